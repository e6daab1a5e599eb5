"""3D Gaussian splatting for facebench: a model, ``rasterize()`` (torch on CPU, gsplat on CUDA), ``fit()``."""

from .densify import DensifyConfig
from .fit import FitConfig, FitView, fit
from .model import GaussianModel, Render
from .rasterize import choose_backend, rasterize

__all__ = [
    "DensifyConfig",
    "FitConfig",
    "FitView",
    "GaussianModel",
    "Render",
    "choose_backend",
    "fit",
    "rasterize",
]
