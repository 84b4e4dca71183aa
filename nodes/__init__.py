"""Thin ComfyUI node classes, one module per stage. The work lives in the `dabfusion` package."""

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
