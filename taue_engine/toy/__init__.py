"""The embedded toy model: `model/` is a diffusers SDXL folder (`--model toy`), trained by `python -m lab.train`."""
