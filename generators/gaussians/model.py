"""``GaussianModel``: the parameters of a 3DGS scene, how to render them, and how they go to disk.

Stored raw (log-scales, opacity logits, unnormalised quaternions) so optimisers work on an
unconstrained space; the activated values are properties. Files are safetensors with a JSON header
(never pickle), and ``export_ply`` writes the INRIA 3DGS layout that splat viewers open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from facebench.errors import CheckpointError, InvalidConfig
from facebench.files import atomic_path

from .cameras import camera_center
from .rasterize import Renderer, rasterize
from .sh import eval_sh, num_sh_bases, rgb_to_sh0, sh0_to_rgb

FORMAT = "facebench.gaussians"
FORMAT_VERSION = 1
PARAM_NAMES = ("means", "log_scales", "quats", "opacity_logits", "colors", "features")


@dataclass
class Render:
    """One view of a model: ``rgb [3,H,W]``, ``features [F,H,W]``, ``alpha [H,W]``, ``depth [H,W]``."""

    rgb: Tensor | None
    features: Tensor | None
    alpha: Tensor
    depth: Tensor
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class GaussianModel:
    """N Gaussians. ``colors``: SH ``[N, (d+1)², 3]`` when ``sh_degree`` is an int, RGB ``[N, 3]`` if None.

    ``features [N, F]`` are extra channels rendered as they are (label logits, palette colours).
    """

    means: Tensor  # [N, 3]
    log_scales: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] (w, x, y, z), normalised when used
    opacity_logits: Tensor  # [N]
    colors: Tensor  # [N, K, 3] SH coefficients, or [N, 3] RGB
    features: Tensor | None = None  # [N, F]
    sh_degree: int | None = 0
    feature_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expect = {"means": (n, 3), "log_scales": (n, 3), "quats": (n, 4), "opacity_logits": (n,)}
        expect["colors"] = (n, 3) if self.sh_degree is None else (n, num_sh_bases(self.sh_degree), 3)
        if self.features is not None:
            expect["features"] = (n, self.features.shape[1] if self.features.dim() == 2 else -1)
        for name, shape in expect.items():
            if tuple(getattr(self, name).shape) != shape:
                raise InvalidConfig(
                    f"Gaussian parameter {name} has shape {tuple(getattr(self, name).shape)}, "
                    f"expected {shape}"
                )

    # ---- activated views -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def num_features(self) -> int:
        return 0 if self.features is None else self.features.shape[1]

    @property
    def scales(self) -> Tensor:
        return self.log_scales.exp()

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.opacity_logits)

    def params(self) -> dict[str, Tensor]:
        """The learnable tensors by name (``features`` only if present)."""
        return {k: getattr(self, k) for k in PARAM_NAMES if getattr(self, k) is not None}

    def rgb(self, viewmat: Tensor, degree: int | None = None) -> Tensor:
        """Per-Gaussian colour ``[N, 3]`` seen from a camera (SH up to ``degree``, default all)."""
        if self.sh_degree is None:
            return self.colors
        d = self.sh_degree if degree is None else min(degree, self.sh_degree)
        dirs = self.means - camera_center(viewmat).to(self.means)
        return torch.clamp_min(eval_sh(d, self.colors, dirs) + 0.5, 0.0)

    # ---- rendering -------------------------------------------------------------------------------
    def render(
        self,
        viewmat: Tensor,
        K: Tensor,
        width: int,
        height: int,
        *,
        what: Literal["rgb", "features", "both"] = "rgb",
        background: Tensor | None = None,
        sh_degree: int | None = None,
        renderer: Renderer = "auto",
        use_compile: bool = False,
        return_meta: bool = False,
    ) -> Render:
        """Render RGB and/or features in one rasterization (channels are nearly free on the CPU path).

        ``background [3]`` applies to RGB only; features composite over zero.
        """
        if what != "rgb" and self.features is None:
            raise CheckpointError(
                "this model has no feature channels", hint="use GaussianModel.with_features()"
            )
        parts = []
        if what in ("rgb", "both"):
            parts.append(self.rgb(viewmat, sh_degree))
        if what in ("features", "both"):
            parts.append(self.features)
        colors = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        dev = self.means.device
        image, alpha, depth, meta = rasterize(
            self.means, self.quats, self.scales, self.opacities, colors,
            viewmat.to(dev, self.means.dtype), K.to(dev, self.means.dtype), width, height,
            renderer=renderer, use_compile=use_compile, return_meta=True,
        )  # fmt: skip
        rgb = image[:3] if what in ("rgb", "both") else None
        feats = image[3:] if what == "both" else (image if what == "features" else None)
        if rgb is not None and background is not None:
            rgb = rgb + (1.0 - alpha)[None] * background.to(rgb)[:, None, None]
        return Render(rgb, feats, alpha, depth, meta if return_meta else {})

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_points(
        cls,
        points: Tensor,
        rgb: Tensor | None = None,
        scales: Tensor | float = 0.01,
        opacity: float = 0.1,
        sh_degree: int | None = 0,
        num_features: int = 0,
    ) -> GaussianModel:
        """Isotropic Gaussians at ``points [N,3]`` with colours ``rgb [N,3]`` (grey if None)."""
        n = points.shape[0]
        points = points.float()
        rgb = torch.full((n, 3), 0.5) if rgb is None else rgb.float()
        s = torch.as_tensor(scales, dtype=torch.float32)
        log_scales = torch.log(s.reshape(-1, 1).expand(n, 3).clone() if s.dim() < 2 else s.clone())
        if sh_degree is None:
            colors = rgb.clone()
        else:
            colors = torch.zeros(n, num_sh_bases(sh_degree), 3)
            colors[:, 0] = rgb_to_sh0(rgb)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        logit = torch.logit(torch.tensor(opacity)).item()
        feats = torch.zeros(n, num_features) if num_features else None
        return cls(points.clone(), log_scales, quats, torch.full((n,), logit), colors, feats, sh_degree)

    def with_features(self, num: int, names: list[str] | None = None, fill: float = 0.0) -> GaussianModel:
        """A copy sharing geometry and colour, with ``num`` fresh feature channels (stage 2 of dual 3DGS)."""
        feats = torch.full((len(self), num), fill, dtype=self.means.dtype, device=self.means.device)
        return replace(self, features=feats, feature_names=names, meta=dict(self.meta))

    def detach(self) -> GaussianModel:
        return self._map(lambda t: t.detach().clone())

    def to(self, device: torch.device | str) -> GaussianModel:
        return self._map(lambda t: t.to(device))

    def _map(self, fn) -> GaussianModel:
        tensors = {k: fn(v) for k, v in self.params().items()}
        return replace(self, **tensors, meta=json.loads(json.dumps(self.meta)))

    # ---- files -----------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "num_gaussians": len(self),
            "sh_degree": self.sh_degree,
            "num_features": self.num_features,
            "feature_names": self.feature_names,
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write safetensors (tensors) with the JSON header in its metadata, atomically."""
        path = Path(path)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.params().items()}
        write_safetensors_atomic(path, tensors, {FORMAT: json.dumps(self.header())})
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> GaussianModel:
        """Read a file written by ``save`` (refuses anything else)."""
        tensors, header = read_safetensors(path, FORMAT)
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise CheckpointError("not a facebench Gaussian model file", path)
        missing = [k for k in PARAM_NAMES[:5] if k not in tensors]
        if missing:
            raise CheckpointError(f"missing tensors {missing}", path)
        try:
            return cls(
                **{k: tensors[k].to(device) for k in tensors if k in PARAM_NAMES},
                sh_degree=header["sh_degree"],
                feature_names=header.get("feature_names"),
                meta=header.get("meta") or {},
            )
        except InvalidConfig as e:
            raise CheckpointError(str(e), path) from e

    def export_ply(self, path: str | Path, include_features: bool = False) -> Path:
        """Write the INRIA 3DGS PLY layout (binary little-endian), which common splat viewers read.

        Properties: x y z, nx ny nz (zeros), f_dc_0..2, f_rest_* (channel-major), opacity (logit),
        scale_0..2 (log), rot_0..3 (w x y z). RGB models are stored as degree-0 SH. Extra features
        are appended as ``feat_i`` only when asked, since some viewers reject unknown properties.
        """
        n = len(self)
        if self.sh_degree is None:
            dc, rest = rgb_to_sh0(self.colors.detach()), torch.zeros(n, 0)
        else:
            sh = self.colors.detach()
            dc, rest = sh[:, 0], sh[:, 1:].transpose(1, 2).reshape(n, -1)
        cols = [
            self.means,
            torch.zeros(n, 3),
            dc,
            rest,
            self.opacity_logits[:, None],
            self.log_scales,
            self.quats,
        ]
        names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        names += [f"f_rest_{i}" for i in range(rest.shape[1])]
        names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        if include_features and self.features is not None:
            cols.append(self.features)
            names += [f"feat_{i}" for i in range(self.num_features)]
        data = torch.cat([c.detach().float().cpu().reshape(n, -1) for c in cols], 1).numpy().astype("<f4")
        head = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
        head += [f"property float {k}" for k in names] + ["end_header"]
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(("\n".join(head) + "\n").encode("ascii"))
            f.write(np.ascontiguousarray(data).tobytes())
        return path

    def rgb_dc(self) -> Tensor:
        """View-independent base colour ``[N, 3]``."""
        return self.colors if self.sh_degree is None else sh0_to_rgb(self.colors[:, 0])


def write_safetensors_atomic(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    """safetensors through ``facebench.files.atomic_path``: never a half-written file, readable as the umask says."""
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_safetensors(path: str | Path, key: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Tensors and the JSON header stored under ``key`` in a safetensors file's metadata."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("file does not exist", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"cannot read safetensors ({e})", path) from e
    if key not in meta:
        raise CheckpointError(f"no {key} header in the safetensors metadata", path)
    return tensors, json.loads(meta[key])
