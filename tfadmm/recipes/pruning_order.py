"""Pruned weights stay pruned: a sparsity never decreases from one stage to the next."""

from __future__ import annotations


def sparsity_of(constraint):
    """The sparsity a constraint prunes to (its first part's, for a chain), or None."""
    if hasattr(constraint, "first"):
        return sparsity_of(constraint.first)
    return getattr(constraint, "sparsity", None)


def check_sparsity_grows(reader, stages):
    """Fails every target whose sparsity is below the one an earlier stage gave it.

    Args:
        reader: the `Reader` that collects the errors.
        stages: in stage order, `(stage name, targets)` pairs; each target is
            `(key, path, constraint, subject)`: `key` is what stays pruned (a
            pattern, or a layer once resolved on a model), `path` where the
            recipe sets its sparsity, and `subject` the words naming it in
            the message (`""`, or `" for layer 'fc1'"`). Read lazily, stage by
            stage.
    """
    seen = {}
    for name, targets in stages:
        for key, path, constraint, subject in targets:
            sparsity = sparsity_of(constraint)
            if sparsity is None:
                continue
            before = seen.get(key)
            if before is not None and sparsity < before[0]:
                reader.fail(path, f"at least {before[0]}{subject} (its sparsity in stage "
                            f"'{before[1]}'): pruned weights stay pruned", sparsity)
            seen[key] = (sparsity, name)
