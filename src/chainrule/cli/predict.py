"""``chainrule predict CKPT IMAGE``: class probabilities of one image."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from chainrule.cli.common import (
    UserError,
    add_device_flag,
    check_input_file,
    check_output_path,
    first_line,
)
from chainrule.cli.data import model_from_checkpoint, read_checkpoint


def add_parser(sub: Any) -> None:
    predict = sub.add_parser(
        "predict",
        help="class probabilities of one image",
        description=(
            "Classify a photo or drawing of one digit (PNG, JPEG or anything Pillow reads; "
            "gray, RGB or RGBA; any size and background) with a checkpoint. The image is "
            "prepared as MNIST's digits were: dark ink on light paper is inverted, the digit "
            "is cropped, fitted into 20x20 keeping its aspect ratio and centred by its centre "
            "of mass in 28x28 (chainrule.datasets.digits.mnist_like). Fashion-MNIST "
            "checkpoints get the inversion and a plain resize. Reading images needs Pillow: "
            "pip install pillow."
        ),
    )
    predict.add_argument("checkpoint", metavar="CKPT")
    predict.add_argument("image", metavar="IMAGE")
    predict.add_argument(
        "--invert", action="store_true", help="always invert (default: when the border is light)"
    )
    predict.add_argument(
        "--no-invert-detect",
        dest="invert_detect",
        action="store_false",
        help="never invert on its own (take the image as light ink on dark)",
    )
    predict.add_argument(
        "--no-clean",
        dest="clean",
        action="store_false",
        help="keep the background and its noise (no level subtraction or ink stretching)",
    )
    predict.add_argument(
        "--no-crop", dest="crop", action="store_false", help="fit the whole image, not the ink"
    )
    predict.add_argument(
        "--no-center",
        dest="center",
        action="store_false",
        help="centre the digit's box, not its centre of mass",
    )
    predict.add_argument(
        "--raw",
        action="store_true",
        help="no preparation at all: only resize to the model's input (and --invert if given)",
    )
    predict.add_argument(
        "--prepare",
        action="store_true",
        help="prepare even an image already in the model's format (side x side, dark border)",
    )
    predict.add_argument(
        "--show", metavar="PATH", help="save the image the model classified as a PNG"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_flag(predict)
    predict.set_defaults(func=run)


#: The largest image ``predict`` decodes: 4096 x 4096 pixels (16.8 million), checked from the
#: file's header before any pixel is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096


def _pillow() -> Any:
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:
        raise UserError(
            "predict needs Pillow to read images: pip install pillow (it comes with "
            "chainrule[plot] too); the preparation itself, "
            "chainrule.datasets.digits.mnist_like, works on NumPy arrays without it"
        ) from None
    return Image, ImageOps, UnidentifiedImageError


def read_image(path: str) -> Any:
    """The pixels of an image file as a uint8 array: (H, W) gray, (H, W, 3) or (H, W, 4)."""
    import warnings

    import numpy as np

    Image, ImageOps, UnidentifiedImageError = _pillow()
    check_input_file("image", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                _check_image_size(path, image.size)
                image = ImageOps.exif_transpose(image)  # phone photos: upright as shown
                if image.mode.startswith(("I", "F")):  # 16-bit / float gray: keep the range
                    pixels = np.asarray(image, dtype=np.float64)
                    top = 65535.0 if image.mode != "F" else max(1.0, float(pixels.max()))
                    return np.clip(pixels / top * 255.0, 0, 255).round().astype(np.uint8)
                transparent = "A" in image.mode or "transparency" in image.info
                mode = "RGBA" if transparent else "L" if image.mode in ("1", "L") else "RGB"
                return np.asarray(image.convert(mode), dtype=np.uint8)
    except UnidentifiedImageError:
        raise UserError(f"cannot read {path}: not an image file Pillow knows") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UserError(f"image {path} is over the size limit: {first_line(exc)}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's plugins raise all three
        raise UserError(f"cannot read {path}: {first_line(exc)}") from None


def prepare(pixels: Any, side: int, args: argparse.Namespace, dataset: str | None) -> Any:
    """The (side, side) input the model sees, in [0, 1], and whether it was inverted."""
    import numpy as np

    from chainrule.datasets.digits import area_resize, mnist_like, needs_invert, to_gray

    try:
        gray = to_gray(pixels)
    except ValueError as exc:
        raise UserError(f"image {args.image}: {exc}") from None
    invert = True if args.invert else (needs_invert(gray) if args.invert_detect else False)
    if as_given(gray, side, invert, args):
        x = np.clip(area_resize(gray, (side, side)), 0.0, 1.0)
        return (1.0 - x if invert else x), invert
    digits = dataset != "fashion-mnist"  # clothes fill the frame: no 20x20 box, no centring
    box = round(side * 20 / 28) if digits else side
    x = mnist_like(
        gray,
        invert=invert,
        clean=args.clean,
        crop=args.crop and digits,
        center=args.center and digits,
        side=side,
        box=box,
    )
    return x, invert


def as_given(gray: Any, side: int, invert: bool, args: argparse.Namespace) -> bool:
    """Whether the image goes to the model only resized: ``--raw``, or an image already in
    the model's format (side x side, light on dark, as exported from the dataset itself),
    unless ``--prepare`` asks to prepare it all the same."""
    return bool(args.raw or (gray.shape == (side, side) and not invert and not args.prepare))


def save_show(path: str, x: Any) -> None:
    """Write the classified image as a gray PNG (atomically), enlarged 4x to be seen."""
    import io

    import numpy as np

    from chainrule.serialization import atomic_write

    Image, _, _ = _pillow()
    check_output_path("--show", path)
    pixels = (np.clip(x, 0.0, 1.0) * 255).round().astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    big = image.resize((4 * x.shape[1], 4 * x.shape[0]), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    try:
        with atomic_write(path) as fh:
            fh.write(buffer.getvalue())
    except OSError as exc:
        raise UserError(f"--show {path}: cannot write: {exc}") from None


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


def run(args: argparse.Namespace) -> int:
    from chainrule.datasets import FASHION_MNIST_CLASSES

    arrays, meta = read_checkpoint(args.checkpoint)
    model, config = model_from_checkpoint(args.checkpoint, arrays, meta)
    side = math.isqrt(config["input_size"])
    if side * side != config["input_size"]:
        raise UserError(
            f"the model takes {config['input_size']} inputs, not a square image; cannot predict"
        )
    pixels = read_image(args.image)
    dataset = meta.get("dataset")
    x, inverted = prepare(pixels, side, args, dataset)
    if inverted and not args.invert:
        print(
            "chainrule predict: note: dark ink on a light background: inverted it to MNIST's "
            "light on dark (as if you pass --invert; --no-invert-detect turns this off)",
            file=sys.stderr,
        )
    if args.show:
        save_show(args.show, x)
    probs = _probabilities(model, config, x)
    top = int(probs.argmax())
    names = list(FASHION_MNIST_CLASSES) if dataset == "fashion-mnist" else None

    def label(k: int) -> str:
        return f"{k} ({names[k]})" if names and k < len(names) else str(k)

    if args.json:
        probabilities = [float(p) for p in probs]
        result = {"prediction": top, "label": label(top), "probabilities": probabilities}
        steps = _steps(args, inverted, dataset, pixels.shape[:2], side)
        print(json.dumps({**result, "image": str(args.image), "preparation": steps}))
        return 0
    steps = _steps(args, inverted, dataset, pixels.shape[:2], side)
    height, width = pixels.shape[:2]
    kind = {2: "gray", 3: "RGB", 4: "RGBA"}[pixels.ndim if pixels.ndim == 2 else pixels.shape[2]]
    print(f"image       {args.image} ({width}x{height} {kind}; {steps})")
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


def _steps(
    args: argparse.Namespace, inverted: bool, dataset: str | None, gray_shape: Any, side: int
) -> str:
    """What was done to the image, in words (``inverted, cropped, fitted 20x20, centred``)."""
    steps = ["inverted"] if inverted else []
    if args.raw:
        return ", ".join([*steps, "resized"])
    if gray_shape == (side, side) and not inverted and not args.prepare:
        return "already in the model's format: taken as it is"
    digits = dataset != "fashion-mnist"
    steps += ["cleaned"] * args.clean + ["cropped"] * (args.crop and digits)
    steps.append("fitted 20x20" if digits else "resized")
    steps += ["centred by mass"] * (args.center and digits)
    return ", ".join(steps)
