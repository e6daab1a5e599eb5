"""3D Gaussian splatting for facebench: a model, ``rasterize()`` (torch on CPU, gsplat on CUDA), ``fit()``.

Import from the room that holds each piece; the package itself imports nothing, so a light submodule
(``densify_config``, read by ``facebench generate --help``) loads without torch:

    generators.gaussians.rasterize        rasterize(), choose_renderer()
    generators.gaussians.fit              fit(), FitConfig, FitView
    generators.gaussians.model            GaussianModel, Render
    generators.gaussians.densify_config   DensifyConfig
"""
