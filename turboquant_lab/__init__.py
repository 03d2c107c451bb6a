"""TurboQuant Lab."""
