"""The words of ``chainrule check``: one English and one Chinese sentence per diagnosis code.

A :class:`~chainrule.checking.report.Diagnosis` holds a code and its arguments (numbers, names,
shapes as text); the sentence is made only when the report is printed, in the language asked.
"""

from __future__ import annotations

from typing import Any

EN: dict[str, str] = {
    # the learner's file
    "load_syntax": "{file}, line {line}: syntax error: {msg}. Nothing in the file was checked.",
    "load_raised": "importing {file} raised {exc}: {msg}. Nothing in the file was checked.",
    "load_missing": "cannot read {file}: {msg}",
    "no_layers": "no layer classes in {file} (a layer is a class with forward and backward)",
    "skip_unknown": (
        "{cls} is not one of the book's layers and does not say what its inputs are: give the "
        "class check_inputs = {{'x': (4, 3)}} (and check_init = {{...}} for its constructor)"
    ),
    "guessed_inputs": "inputs guessed ({inputs}); set check_inputs on the class to choose them",
    # constructing and running forward
    "init_raised": "{cls}({args}) raised {exc}: {msg}",
    "forward_raised": "forward raised {exc}: {msg}",
    "forward_none": "forward returned None: did you forget `return out`?",
    "forward_constant": (
        "forward returned {value} instead of an array of shape {shape}: "
        "a placeholder `return 0` left in place of `return out`?"
    ),
    "forward_not_array": "forward returned {value}, not an array of numbers",
    "low_precision": (
        "forward returned {dtype} for float64 inputs: the numerical gradient needs float64 "
        "(float32 round-off alone gives relative errors near 1e-3); keep the input's dtype"
    ),
    "abstract": "{cls} raises NotImplementedError: a base class, nothing to check",
    "forward_shape": "forward returned shape {got}, but chainrule's {ref} gives {expected}",
    "forward_wrong_op": "forward computes {got_op}, but {ref}'s forward is {want_op}",
    "forward_sign": "forward returns minus what chainrule's {ref} returns: a sign is flipped",
    "forward_factor": "forward is {factor:.4g} times chainrule's {ref}",
    "forward_factor_batch": (
        "forward is N = {n} times chainrule's {ref} (the batch size): chainrule divides the "
        "loss by the batch size; fine if your backward matches your forward"
    ),
    "forward_mismatch": (
        "forward differs from chainrule's {ref}: largest difference {err:.3g} at {index} "
        "(yours {got:.6g}, chainrule's {want:.6g})"
    ),
    "forward_nondeterministic": (
        "forward gives different outputs for the same input although np.random was re-seeded "
        "before each call: its randomness comes from another generator, so its gradient "
        "cannot be checked (draw the mask with np.random.rand, as the book does)"
    ),
    "forward_mutates_input": (
        "forward changed its input {name} in place. The caller's array is the previous "
        "layer's output, which that layer may have saved for its own backward (Sigmoid saves "
        "out): it is now wrong. Work on a copy (out = x.copy())."
    ),
    # backward
    "backward_raised": "backward raised {exc}: {msg}",
    "state_missing": (
        "{method} uses self.{attr}, which is {how} at that point: forward never saved it. "
        "Store it in forward (self.{attr} = ...); {stored}"
    ),
    "backward_none": "backward returned None: did you forget `return dx`?",
    "backward_constant": (
        "backward gave {grad} = {value} instead of an array of shape {shape}: "
        "a placeholder (`return 0`) left where the gradient belongs?"
    ),
    "wrong_count": (
        "backward returned {got} value(s), but forward takes {want} input(s) with a "
        "gradient ({names}): return one gradient per input, in forward's argument order"
    ),
    "dout_mutated": (
        "backward wrote into dout. Harmless while nobody reads dout again (the book's Relu), "
        "wrong as soon as the same dout also flows into another branch (a value used twice, "
        "a residual connection): that branch sees the zeros. Use dx = dout * mask, or copy."
    ),
    "param_grad_missing": (
        "self.{grad} is not set after backward (expected an array of shape {shape}, like "
        "self.{param})"
    ),
    # shapes
    "shape_batch_sum": (
        "{grad} has shape {got}, but {param} has shape {expected}: "
        "did you sum over the batch axis? ({grad} = np.sum(..., axis=0))"
    ),
    "shape_summed_batch": (
        "{grad} has shape {got}, but {param} has shape {expected}: the batch axis was summed "
        "away; {grad} needs one row per sample, like {param}"
    ),
    "shape_transposed": (
        "{grad} has shape {got}, but {param} has shape {expected}: transposed? "
        "(for Affine, dW = x.T @ dout)"
    ),
    "shape_reshape": (
        "{grad} has shape {got}, but {param} has shape {expected}: the same number of "
        "elements; reshape it back to {param}'s shape"
    ),
    "shape_wrong": "{grad} has shape {got}, but {param} has shape {expected}",
    # values compared with the numerical gradient
    "grad_zero": "{grad} is all zeros, but the numerical gradient is not",
    "grad_sign": "{grad} has the wrong sign: it is minus the numerical gradient",
    "grad_factor_batch_big": (
        "{grad} is {factor:.4g} times the numerical gradient, N = {n} being the batch size: "
        "divided by the batch size twice or not at all?"
    ),
    "grad_factor_batch_small": (
        "{grad} is 1/{inverse:.4g} of the numerical gradient, N = {n} being the batch size: "
        "divided by the batch size twice or not at all?"
    ),
    "grad_factor": "{grad} is {factor:.4g} times the numerical gradient: a constant is wrong",
    "grad_mask_inverted": (
        "{grad} is non-zero exactly where the numerical gradient is zero, and zero where it "
        "is not: the mask is inverted (pass dout where x > 0, block it where x <= 0)"
    ),
    "grad_swapped": (
        "{grad} and {other} are swapped: return the gradients in forward's argument order"
    ),
    "grad_transposed": "{grad} is the transpose of the numerical gradient",
    "grad_mismatch": (
        "{grad} disagrees with the numerical gradient: relative error {rel:.3g}, worst at "
        "{index} (yours {a:.6g}, numerical {n:.6g})"
    ),
    "grad_matches_reference": (
        "{grad} disagrees with your forward but is the gradient of chainrule's {ref}: "
        "backward is right, fix forward"
    ),
    "timeout": "{method} was still running after {seconds:g} s: an endless loop?",
    "numeric_failed": "the numerical gradient could not be computed: forward raised {exc}: {msg}",
    "internal": "chainrule check could not finish {cls}: {exc}: {msg} (please report this)",
}

ZH: dict[str, str] = {
    "load_syntax": "{file} 第 {line} 行有语法错误：{msg}。文件中的内容都没有检查。",
    "load_raised": "导入 {file} 时抛出了 {exc}：{msg}。文件中的内容都没有检查。",
    "load_missing": "无法读取 {file}：{msg}",
    "no_layers": "{file} 中没有找到层（层是同时有 forward 和 backward 方法的类）",
    "skip_unknown": (
        "{cls} 不是书中的层，也没有说明它的输入：请给这个类加上 check_inputs = {{'x': (4, 3)}}"
        "（构造参数用 check_init = {{...}}）"
    ),
    "guessed_inputs": "输入是猜测的（{inputs}）；在类上设置 check_inputs 可以指定输入",
    "init_raised": "{cls}({args}) 抛出了 {exc}：{msg}",
    "forward_raised": "forward 抛出了 {exc}：{msg}",
    "forward_none": "forward 返回了 None：是不是忘了写 `return out`？",
    "forward_constant": (
        "forward 返回了 {value}，而不是形状为 {shape} 的数组：是不是把占位用的 `return 0` "
        "留在了 `return out` 的位置？"
    ),
    "forward_not_array": "forward 返回了 {value}，而不是由数值组成的数组",
    "low_precision": (
        "输入是 float64，forward 却返回了 {dtype}：数值梯度需要 float64（仅 float32 的舍入误差"
        "就会带来约 1e-3 的相对误差）；请保持输入的数据类型"
    ),
    "abstract": "{cls} 抛出了 NotImplementedError：这是一个基类，没有可检查的内容",
    "forward_shape": "forward 返回的形状是 {got}，而 chainrule 的 {ref} 给出的是 {expected}",
    "forward_wrong_op": "forward 计算的是 {got_op}，但 {ref} 的正向传播应该是 {want_op}",
    "forward_sign": "forward 的结果是 chainrule 的 {ref} 的相反数：符号反了",
    "forward_factor": "forward 的结果是 chainrule 的 {ref} 的 {factor:.4g} 倍",
    "forward_factor_batch": (
        "forward 的结果是 chainrule 的 {ref} 的 N = {n} 倍（N 是批大小）：chainrule 把损失除以"
        "批大小；只要你的 backward 与你的 forward 一致，这样也可以"
    ),
    "forward_mismatch": (
        "forward 与 chainrule 的 {ref} 不一致：最大差值 {err:.3g}，位于 {index}"
        "（你的是 {got:.6g}，chainrule 的是 {want:.6g}）"
    ),
    "forward_nondeterministic": (
        "每次调用前都重新设置了 np.random 的种子，forward 对同一个输入仍给出不同的输出："
        "它的随机数来自别的生成器，因此无法检查梯度（请像书中那样用 np.random.rand 生成掩码）"
    ),
    "forward_mutates_input": (
        "forward 原地修改了输入 {name}。调用者传入的数组是上一层的输出，上一层可能把它保存下来"
        "供自己的 backward 使用（Sigmoid 就保存了 out），现在它被改坏了。请在副本上操作"
        "（out = x.copy()）。"
    ),
    "backward_raised": "backward 抛出了 {exc}：{msg}",
    "state_missing": (
        "{method} 用到了 self.{attr}，但此时它{how}：forward 没有保存它。请在 forward 中保存"
        "（self.{attr} = ...）；{stored}"
    ),
    "backward_none": "backward 返回了 None：是不是忘了写 `return dx`？",
    "backward_constant": (
        "backward 给出的 {grad} 是 {value}，而不是形状为 {shape} 的数组：是不是把占位用的 "
        "`return 0` 留在了梯度应在的位置？"
    ),
    "wrong_count": (
        "backward 返回了 {got} 个值，但 forward 有 {want} 个需要梯度的输入（{names}）："
        "每个输入返回一个梯度，顺序与 forward 的参数顺序相同"
    ),
    "dout_mutated": (
        "backward 改写了 dout。只要之后没有人再读 dout（如书中的 Relu）就无害；可一旦同一个 "
        "dout 还要流向另一个分支（一个值被用了两次、残差连接），那个分支看到的就是被清零的值。"
        "请写成 dx = dout * mask，或者先复制。"
    ),
    "param_grad_missing": (
        "backward 之后 self.{grad} 没有被设置（应当是形状为 {shape} 的数组，与 self.{param} 相同）"
    ),
    "shape_batch_sum": (
        "{grad} 的形状是 {got}，但 {param} 的形状是 {expected}：是不是忘了沿批次轴求和？"
        "（{grad} = np.sum(..., axis=0)）"
    ),
    "shape_summed_batch": (
        "{grad} 的形状是 {got}，但 {param} 的形状是 {expected}：批次轴被求和消掉了；"
        "{grad} 应该像 {param} 一样每个样本一行"
    ),
    "shape_transposed": (
        "{grad} 的形状是 {got}，但 {param} 的形状是 {expected}：是不是转置了？"
        "（Affine 中 dW = x.T @ dout）"
    ),
    "shape_reshape": (
        "{grad} 的形状是 {got}，但 {param} 的形状是 {expected}：元素个数相同，"
        "请把它变回 {param} 的形状"
    ),
    "shape_wrong": "{grad} 的形状是 {got}，但 {param} 的形状是 {expected}",
    "grad_zero": "{grad} 全为零，但数值梯度不是",
    "grad_sign": "{grad} 的符号反了：它是数值梯度的相反数",
    "grad_factor_batch_big": (
        "{grad} 是数值梯度的 {factor:.4g} 倍，而批大小 N = {n}：是不是除了两次批大小，"
        "或者根本没有除？"
    ),
    "grad_factor_batch_small": (
        "{grad} 是数值梯度的 1/{inverse:.4g}，而批大小 N = {n}：是不是除了两次批大小，"
        "或者根本没有除？"
    ),
    "grad_factor": "{grad} 是数值梯度的 {factor:.4g} 倍：某个常数因子错了",
    "grad_mask_inverted": (
        "数值梯度为零的地方 {grad} 恰好不为零，数值梯度不为零的地方 {grad} 恰好为零："
        "掩码反了（x > 0 处让 dout 通过，x <= 0 处挡住）"
    ),
    "grad_swapped": "{grad} 和 {other} 顺序颠倒了：请按 forward 的参数顺序返回梯度",
    "grad_transposed": "{grad} 是数值梯度的转置",
    "grad_mismatch": (
        "{grad} 与数值梯度不一致：相对误差 {rel:.3g}，最差处在 {index}"
        "（你的是 {a:.6g}，数值梯度是 {n:.6g}）"
    ),
    "grad_matches_reference": (
        "{grad} 与你的 forward 不一致，但它正是 chainrule 的 {ref} 的梯度：backward 是对的，"
        "要改的是 forward"
    ),
    "timeout": "{method} 运行了 {seconds:g} 秒仍未结束：是不是陷入了死循环？",
    "numeric_failed": "无法计算数值梯度：forward 抛出了 {exc}：{msg}",
    "internal": "chainrule check 未能检查完 {cls}：{exc}：{msg}（请报告这个问题）",
}

#: How a missing attribute is described in the state_missing sentence.
HOW = {
    "en": {"None": "still None", "missing": "not set at all"},
    "zh": {"None": "仍然是 None", "missing": "根本不存在"},
}

#: What forward does store: (some attributes, none).
STORED = {
    "en": ("forward stores {}.", "forward stores nothing."),
    "zh": ("forward 保存的是 {}。", "forward 什么也没有保存。"),
}

WORDS = {
    "en": {"warning": "warning: ", "error": "error: ", "note": "note: "},
    "zh": {"warning": "警告：", "error": "错误：", "note": "提示："},
}

LANGS = {"en": EN, "zh": ZH}


def render(code: str, args: dict[str, Any], lang: str = "en") -> str:
    """The sentence for ``code`` in ``lang`` (``"en"`` or ``"zh"``).

    >>> render("forward_none", {}, "en")
    'forward returned None: did you forget `return out`?'
    >>> render("grad_sign", {"grad": "dx"}, "zh")
    'dx 的符号反了：它是数值梯度的相反数'
    """
    if lang not in LANGS:
        raise ValueError(f"chainrule check: language must be 'en' or 'zh', got {lang!r}")
    args = dict(args)
    if code == "state_missing":
        args["how"] = HOW[lang].get(args.get("how", ""), args.get("how", ""))
        some, none = STORED[lang]
        args["stored"] = some.format(args["stored"]) if args.get("stored") else none
    return LANGS[lang][code].format(**args)
