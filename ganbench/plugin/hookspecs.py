"""Every extension point of ganbench, and nothing else.

Each hook receives a ``register`` callback. Calling ``register(SomeClass)`` adds one plugin under
``SomeClass.name``; the core records which plugin module supplied it, and refuses a second plugin that
registers the same name (a silent overwrite would corrupt a leaderboard).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("ganbench")
hookimpl = pluggy.HookimplMarker("ganbench")


@hookspec
def register_architectures(register: Callable) -> None:
    """Register GAN architectures: subclasses of :class:`ganbench.Architecture`.

    :param register: call ``register(ArchitectureClass)`` once per architecture.
    """


@hookspec
def register_strategies(register: Callable) -> None:
    """Register transfer strategies: subclasses of :class:`ganbench.Strategy`.

    :param register: call ``register(StrategyClass)`` once per strategy.
    """


@hookspec
def register_datasets(register: Callable) -> None:
    """Register datasets: subclasses of :class:`ganbench.Dataset`.

    :param register: call ``register(DatasetClass)`` once per dataset.
    """


@hookspec
def register_metrics(register: Callable) -> None:
    """Register evaluation metrics: subclasses of :class:`ganbench.Metric`.

    :param register: call ``register(MetricClass)`` once per metric.
    """


@hookspec
def register_augmentations(register: Callable) -> None:
    """Register augmentations applied to every image D sees: subclasses of :class:`ganbench.Augmentation`.

    :param register: call ``register(AugmentationClass)`` once per augmentation.
    """
