"""chainrule: error backpropagation through computational graphs, readable and fast.

The book's layers (:mod:`chainrule.layers`) work by hand on NumPy arrays; the same classes are
the nodes of the autograd engine (:class:`Tensor`), so each local derivative is written once.
"""

from chainrule import functions, memory, nn
from chainrule.backend import current_device, to_device, to_numpy, use_device
from chainrule.config import Config, eval_mode, no_grad, seed, train_mode, using_config
from chainrule.function import Function
from chainrule.tensor import Tensor, as_tensor

__version__ = "0.1.0"

memory.keep_freed_memory()  # reuse a step's freed pages in the next (see chainrule.memory)

__all__ = [
    "Config",
    "Function",
    "Tensor",
    "__version__",
    "as_tensor",
    "current_device",
    "eval_mode",
    "functions",
    "nn",
    "no_grad",
    "seed",
    "to_device",
    "to_numpy",
    "train_mode",
    "use_device",
    "using_config",
]
