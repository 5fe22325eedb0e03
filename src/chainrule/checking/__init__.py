"""Grade a learner's own layers and name the mistake (``chainrule check FILE``).

The book's way of writing a layer is a class with ``forward`` and ``backward``. This package
loads a learner's file, finds those classes, runs each on random inputs, compares its forward
with chainrule's layer of the same name (``MulLayer``, ``AddLayer``, ``Relu``, ``Sigmoid``,
``Affine``, ``SoftmaxWithLoss``, ``IdentityWithLoss``, ``Convolution``, ``Pooling``,
``BatchNormalization``, ``Dropout``) and every gradient with a float64 numerical gradient under
a random upstream ``dout``, and says what is wrong in English or Chinese: a shape summed over
the wrong axis, a factor of the batch size, a flipped sign, an inverted mask, state that
forward never saved, a backward that writes into ``dout`` ...

Other classes declare their inputs: see :mod:`chainrule.checking.specs` (``check_inputs``,
``check_init``, or the :func:`checkable` decorator).

>>> import numpy as np
>>> from chainrule.checking import check_layer
>>> class Sigmoid:
...     def forward(self, x):
...         out = 1 / (1 + np.exp(-x))
...         return out
...     def backward(self, dout):
...         return dout * (1.0 - self.out) * self.out
>>> report = check_layer(Sigmoid)
>>> report.status, report.diagnoses[0].code, report.diagnoses[0].args["attr"]
('FAIL', 'state_missing', 'out')
"""

from chainrule.checking.command import main
from chainrule.checking.report import Diagnosis, GradientResult, LayerReport, format_reports
from chainrule.checking.runner import check_file, check_layer
from chainrule.checking.specs import BOOK_NAMES, Spec, checkable

__all__ = [
    "BOOK_NAMES",
    "Diagnosis",
    "GradientResult",
    "LayerReport",
    "Spec",
    "check_file",
    "check_layer",
    "checkable",
    "format_reports",
    "main",
]
