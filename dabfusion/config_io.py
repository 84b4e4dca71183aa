"""Model configurations as frozen dataclasses that round-trip through JSON (flow AE, diffusion).

A configuration is saved inside every checkpoint and the model is rebuilt from it, so reading
one must refuse keys it does not know (a newer dabfusion wrote them) rather than drop them, and a
config can be named by preset, by JSON file or passed through. :class:`JSONConfig` holds that
plumbing once; each config module keeps its fields, checks and presets.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, ClassVar, Mapping, Self

from .errors import ConfigMismatchError


class JSONConfig:
    """Mixin for a frozen ``@dataclass`` config: ``to_dict``/``to_json``/``from_dict``/``replace``."""

    #: what messages call this config, lower case ("flow AE", "diffusion")
    kind_name: ClassVar[str] = "model"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigMismatchError(
                f"{cls.kind_name[:1].upper()}{cls.kind_name[1:]} config has keys this version of dabfusion "
                f"does not know: {unknown}. The checkpoint was written by a newer version; update dabfusion.")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def resolve(cls, name_or_path: str | os.PathLike | Self, presets: Mapping[str, Self]) -> Self:
        """A preset by name, a JSON file (a bare config or a checkpoint header), or a config passed through."""
        if isinstance(name_or_path, cls):
            return name_or_path
        key = os.fspath(name_or_path)
        if key in presets:
            return presets[key]
        if os.path.isfile(key):
            with open(key, encoding="utf-8") as fh:
                data = json.load(fh)
            return cls.from_dict(data.get("config", data))
        raise ValueError(f"Unknown {cls.kind_name} config {key!r}: use one of {sorted(presets)} or a JSON file.")
