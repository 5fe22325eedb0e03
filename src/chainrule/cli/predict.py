"""``chainrule predict CKPT IMAGE``: class probabilities of one image."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from chainrule.cli.common import UserError, add_device_flag, check_input_file, first_line
from chainrule.cli.data import model_from_checkpoint, read_checkpoint


def add_parser(sub: Any) -> None:
    predict = sub.add_parser(
        "predict",
        help="class probabilities of one image",
        description=(
            "Classify a grayscale image (PNG, or anything Pillow reads) with a checkpoint. "
            "Images that are not 28x28 are resized. MNIST digits are white on black: pass "
            "--invert for dark ink on a light background."
        ),
    )
    predict.add_argument("checkpoint", metavar="CKPT")
    predict.add_argument("image", metavar="IMAGE")
    predict.add_argument("--invert", action="store_true", help="use 1 - pixel (dark on light)")
    predict.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_flag(predict)
    predict.set_defaults(func=run)


#: The largest image ``predict`` decodes: 4096 x 4096 pixels (16.8 million), checked from the
#: file's header before any pixel is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096


def read_image(path: str, side: int, invert: bool) -> Any:
    """A grayscale image as floats in [0, 1], resized to ``side`` x ``side``."""
    import warnings

    import numpy as np

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UserError(
            "predict needs Pillow to read images: pip install pillow (it comes with "
            "chainrule[plot])"
        ) from None
    check_input_file("image", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                _check_image_size(path, image.size)
                gray = image.convert("L")
                original = gray.size
                if gray.size != (side, side):
                    gray = gray.resize((side, side), Image.Resampling.LANCZOS)
                pixels = np.asarray(gray, dtype=np.float64) / 255.0
    except UnidentifiedImageError:
        raise UserError(f"cannot read {path}: not an image file Pillow knows") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UserError(f"image {path} is over the size limit: {first_line(exc)}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's plugins raise all three
        raise UserError(f"cannot read {path}: {first_line(exc)}") from None
    if invert:
        pixels = 1.0 - pixels
    return pixels, original


def _check_image_size(path: str, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise UserError(
            f"image {path} is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} "
            "pixels; shrink it first (the model sees 28x28)"
        )


def _probabilities(model: Any, config: Any, pixels: Any) -> Any:
    """Class probabilities: exp of the library's one log-softmax of the model's scores."""
    import numpy as np

    from chainrule.functions.loss import LogSoftmax
    from chainrule.training import predict_scores

    x = pixels.reshape(1, -1).astype(config["dtype"])
    scores = predict_scores(model, x).astype(np.float64)
    return np.exp(LogSoftmax().forward(scores)).reshape(-1)


def _warn_light_background(pixels: Any, invert: bool) -> None:
    import numpy as np

    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if float(border.mean()) > 0.5:
        print(
            "chainrule predict: note: the image has a light background; MNIST digits are "
            "light on black" + ("" if invert else ": pass --invert for dark ink on paper"),
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    from chainrule.datasets import FASHION_MNIST_CLASSES

    arrays, meta = read_checkpoint(args.checkpoint)
    model, config = model_from_checkpoint(args.checkpoint, arrays, meta)
    side = math.isqrt(config["input_size"])
    if side * side != config["input_size"]:
        raise UserError(
            f"the model takes {config['input_size']} inputs, not a square image; cannot predict"
        )
    pixels, original = read_image(args.image, side, args.invert)
    _warn_light_background(pixels, args.invert)
    probs = _probabilities(model, config, pixels)
    top = int(probs.argmax())
    dataset = meta.get("dataset")
    names = list(FASHION_MNIST_CLASSES) if dataset == "fashion-mnist" else None

    def label(k: int) -> str:
        return f"{k} ({names[k]})" if names and k < len(names) else str(k)

    if args.json:
        probabilities = [float(p) for p in probs]
        result = {"prediction": top, "label": label(top), "probabilities": probabilities}
        print(json.dumps({**result, "image": str(args.image)}))
        return 0
    size = f"{original[0]}x{original[1]}"
    resized = "" if original == (side, side) else f", resized to {side}x{side}"
    print(
        f"image       {args.image} ({size} grayscale{resized}{', inverted' if args.invert else ''})"
    )
    print(f"checkpoint  {args.checkpoint} ({dataset})")
    print()
    width = max(5, *(len(label(k)) for k in range(len(probs))))
    print(f"{'class':<{width}}  probability")
    for k, p in enumerate(probs):
        mark = "  <- prediction" if k == top else ""
        print(f"{label(k):<{width}}  {p:11.6f}{mark}")
    print()
    print(f"prediction: {label(top)}  ({100 * probs[top]:.2f}%)")
    return 0
