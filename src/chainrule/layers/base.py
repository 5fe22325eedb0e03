"""What the book's parameter layers (Affine, Convolution) share: a Function doing the math."""

from __future__ import annotations

from chainrule.function import Function


class ParamLayer:
    """A stateful book-style layer around ``self.op``, a Function of ``(x, W, b)``.

    The layer holds the parameters by reference and stores their gradients; ``self.op`` holds
    the forward and backward math, written once.
    """

    op: Function

    @property
    def need_dx(self) -> bool:
        """Whether ``backward`` computes ``dx``; ``False`` for a network's first layer, whose
        input gradient nobody uses (``backward`` then returns ``None``)."""
        return self.op.wants_grad(0)

    @need_dx.setter
    def need_dx(self, value: bool) -> None:
        self.op.needs_input_grad = None if value else (False, True, True)
