"""``chainrule evaluate CKPT``: test accuracy and loss of a checkpoint on its test set."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chainrule.cli.choices import DATASETS
from chainrule.cli.common import UserError, add_device_flag
from chainrule.cli.data import (
    TEST_SAMPLES,
    check_classes,
    load_data,
    model_from_checkpoint,
    read_checkpoint,
)


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        help="test accuracy and loss of a checkpoint",
        description="Rebuild the model of a checkpoint and evaluate it on its dataset's test set.",
    )
    evaluate.add_argument("checkpoint", metavar="CKPT")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    evaluate.add_argument(
        "--dataset", choices=DATASETS, help="test set to use (default: the checkpoint's)"
    )
    add_device_flag(evaluate)
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chainrule.training import evaluate

    arrays, meta = read_checkpoint(args.checkpoint)
    batch_size = meta["trainer"].get("eval_batch_size", 1000)
    # Both test sets hold 10,000 samples: no evaluation batch is larger than that.
    model, config = model_from_checkpoint(
        args.checkpoint, arrays, meta, min(batch_size, TEST_SAMPLES)
    )
    dataset = args.dataset or meta.get("dataset")
    if dataset is None:
        raise UserError(f"checkpoint {args.checkpoint} records no dataset; pass --dataset")
    check_classes(args.checkpoint, config, dataset)
    (_, _), (x_test, t_test) = load_data(dataset, args.data_dir, config["dtype"])
    try:
        loss, acc = evaluate(model, x_test, t_test, batch_size=batch_size)
    except ValueError as exc:
        raise UserError(f"cannot evaluate {args.checkpoint} on {dataset}: {exc}") from None
    n = len(x_test)
    recorded = meta["result"].get("test_acc")
    iteration = meta["position"].get("iteration")
    if args.json:
        print(
            json.dumps(
                {
                    "test_accuracy": acc,
                    "test_loss": loss,
                    "correct": round(acc * n),
                    "samples": n,
                    "dataset": dataset,
                    "iteration": iteration,
                    "checkpoint": str(args.checkpoint),
                }
            )
        )
        return 0
    from chainrule.models import describe_model

    print(f"checkpoint     {args.checkpoint}  (iteration {iteration})")
    print(f"model          {describe_model(config)}")
    print(f"test accuracy  {100 * acc:.2f}%  ({round(acc * n)} / {n}, {dataset})")
    print(f"test loss      {loss:.4f}")
    if recorded is not None and dataset == meta.get("dataset"):
        same = "the same" if recorded == acc else "DIFFERENT"
        print(f"recorded       {100 * recorded:.2f}% at training time ({same})")
    return 0
