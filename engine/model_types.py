"""Model types that Hearth's feature packages define, and the module that registers each.

transformers knows its own model types. A type a feature package defines (the lab's Transformer,
``model_type: hearth_lab``) registers itself with the Auto classes when its module is imported. The
loader imports that module on demand, from this table, so the engine's core never imports a feature
package (the rule lint-imports checks). A feature that saves folders of a new type adds a row here.
"""

from __future__ import annotations

import importlib

REGISTERING_MODULES = {
    "hearth_lab": "engine.lab.hf_model",
}


def register_model_type(model_config: object) -> None:
    """Import the module that registers ``model_config["model_type"]``, when a feature defines it."""
    model_type = model_config.get("model_type") if isinstance(model_config, dict) else None
    module = REGISTERING_MODULES.get(model_type) if isinstance(model_type, str) else None
    if module is not None:
        importlib.import_module(module)
