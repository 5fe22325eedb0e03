"""Gradient-descent optimizers: the ones from chapter 6 of the book, plus AdamW.

Every optimizer takes the book's order and PyTorch's, and changes parameter arrays
**in place** (the book's layers keep references to the very same arrays, so an
optimizer must never rebind them):

1. The book's way, with two dicts that share their keys::

       opt = Momentum(lr=0.01)            # or Momentum(0.01): a number first is lr
       opt.update(network.params, grads)  # state is keyed by the dict key

   A value that cannot change in place (a Python float, a NumPy scalar: the book's
   ``optimizer_compare_naive.py``) is replaced in the dict by its new value. Arrays
   (0-d ones too) change in place, so a history that appends ``params["x"]`` must append
   ``params["x"].copy()``.

2. PyTorch's way, parameters first, on parameter-like objects (a ``.data`` array and a
   ``.grad`` that is an array or ``None``) given as a list, a generator, ``(name,
   parameter)`` pairs (``model.named_parameters()``) or a dict::

       opt = Adam(model.parameters(), lr=1e-3)   # or Adam(model.parameters(), 1e-3)
       loss.backward()
       opt.step()        # skips parameters whose .grad is None
       opt.zero_grad()   # sets every .grad to None

   State is keyed by the parameter's position, or by its name. A dict of arrays (a book
   network's ``params``) is accepted too, and then ``opt.step(grads)`` takes the gradients.

Both orders make bit-identical updates; ambiguous calls (``Momentum(0.01, 0.9)``: is 0.9
the momentum or PyTorch's lr?) are a ``TypeError`` saying what to write. Use one style per
optimizer instance: both share the step counter ``t``. ``lr`` left out is the book's
default for the rule (``SGD()`` is ``SGD(lr=0.01)``); :data:`OPTIMIZERS` and
:func:`optimizer_from_name` use each class's ``default_lr`` instead (what the CLI trains with).

A gradient holding NaN or inf is refused with :class:`NonFiniteGradient` naming its
parameter, before anything changes (``opt.check_finite = False`` skips the check: one dot
product per gradient). Hooks (:meth:`Optimizer.add_hook`, :mod:`chainrule.optim.hooks`:
:class:`WeightDecay`, :class:`ClipGradNorm`) act on the gradients before each update.
``Adam(variant="book")`` is the book's form of Adam (see :class:`Adam`).

Performance notes: the state buffers (velocities, squared-gradient averages, ...)
are allocated once, lazily at a parameter's first update, with its shape and
dtype, and then updated with in-place ufuncs. A scratch array per (shape, dtype)
holds the intermediate of each rule, so a step allocates nothing after the
first. Hyperparameters are stored as Python floats, which NumPy treats as
"weak" scalars: float32 parameters stay float32 and are computed in float32.
Validation is full the first time a key is updated; after that each step only
compares the parameter's and gradient's type, dtype and shape, and the key's
state dict, with what was checked (see :meth:`Optimizer._apply`).

Epsilon: every adaptive method here adds ``eps`` *outside* the square root, as
the book does, and every default is the book's ``1e-7`` (PyTorch's defaults are
``1e-10`` for AdaGrad and ``1e-8`` for RMSprop and Adam/AdamW; pass those to
compare numbers with it).

Checkpoints: :meth:`Optimizer.state_dict` returns plain Python values and a flat
mapping ``"slot/key" -> ndarray`` that fits a file of named arrays (``np.savez``);
:meth:`Optimizer.load_state_dict` restores it so that a resumed run makes
bit-identical updates.

Layout: :mod:`~chainrule.optim.base` (the shared machinery), :mod:`~chainrule.optim.checks`
(what an optimizer is given, checked), :mod:`~chainrule.optim.rules` (one short class per
rule, and the :data:`OPTIMIZERS` registry: name -> class, each with its ``default_lr``),
:mod:`~chainrule.optim.hooks` and :mod:`~chainrule.optim.schedules` (learning-rate
schedules, with their :data:`SCHEDULES` registry).
"""

from . import hooks
from .base import CHUNK, NonFiniteGradient, Optimizer
from .hooks import ClipGradNorm, WeightDecay
from .rules import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    RMSprop,
    optimizer_from_name,
)
from .schedules import (
    SCHEDULES,
    CosineSchedule,
    Schedule,
    StepSchedule,
    make_schedule,
)

__all__ = [
    "CHUNK",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "ClipGradNorm",
    "CosineSchedule",
    "Momentum",
    "Nesterov",
    "NonFiniteGradient",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepSchedule",
    "WeightDecay",
    "hooks",
    "make_schedule",
    "optimizer_from_name",
]
