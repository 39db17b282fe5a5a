"""Provider families over HTTP: the request pipeline (`pipeline.py`), a family's HTTP class
(`base.py`) and policy (`policy.py`), and one folder per family (`<family>/`).

The registry that finds the families is `mockserver.families` (the ground floor); its
plugin-facing names stay importable from here, as they were before it moved there.
"""

from mockserver.families import FamilySpec, StatusField, read_path, register, unregister

__all__ = ["FamilySpec", "StatusField", "read_path", "register", "unregister"]
