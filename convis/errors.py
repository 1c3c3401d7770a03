"""The errors of retina configurations (files and values), shared by :mod:`convis.retina_virtualretina` and
the stages that check their cell arrays (:mod:`convis.filters.cell_arrays`)."""

__all__ = ['ConfigurationError', 'ConfigurationKeyError', 'ConfigurationTypeError']


class ConfigurationError(ValueError):
    """An invalid retina configuration (file or value); the message names the file or key and the value."""


class ConfigurationKeyError(ConfigurationError, KeyError):
    """An unknown element, attribute or key (a KeyError too, as a missing key is)."""

    def __str__(self):  # a KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ''


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A configuration part of the wrong structure (a list where a dict belongs, ...)."""
