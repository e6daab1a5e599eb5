"""Dual-3DGS label refinement: lift noisy 2D masks into Gaussians that share the RGB model's geometry,
render new viewpoints, turn rendered labels back into classes, and clean them automatically."""
