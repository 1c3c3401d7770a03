"""Following parameter changes: a hook in convis.variables.parameter_set_hooks that holds its owner weakly."""
import weakref

import convis

__all__ = ['follow_parameters', 'unfollow_parameters']


def follow_parameters(owner, method_name='_parameter_was_set'):
    """Calls ``owner.<method_name>(parameter)`` after every ``Parameter.set``; returns the hook.

    The hook holds ``owner`` weakly and removes itself once the owner is gone.
    """
    ref = weakref.ref(owner)

    def hook(p):
        target = ref()
        if target is None:
            unfollow_parameters(hook)
            return
        getattr(target, method_name)(p)
    convis.variables.parameter_set_hooks.append(hook)
    return hook


def unfollow_parameters(hook):
    """Removes a hook made by :func:`follow_parameters` (nothing happens when it is not there)."""
    try:
        convis.variables.parameter_set_hooks.remove(hook)
    except ValueError:
        pass
