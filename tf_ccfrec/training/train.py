"""Training: `train` (what `ccfrec train` calls) and `train_model` (the TFX Trainer's run_fn).

AdamW with linear warm-up then a constant rate, evaluation of validation NDCG@10 (full ranking)
after every epoch, early stopping with patience (optionally preceded by learning-rate decays from
the best weights at each plateau), the best weights kept, checkpoints every epoch for resuming,
TensorBoard scalars, and a wall-clock budget. Ends with validation and test metrics.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_ccfrec import distribute, ranking, storage
from tf_ccfrec.models.config import ModelConfig
from tf_ccfrec.models.run_directory import (BEST_WEIGHTS, ITEM_ORDER, build_model,
                                            load_best_weights, ranks_file, save_best_weights)
from tf_ccfrec.training import evaluation, inputs

@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimization settings; defaults are the paper's (ccfrec.md §5).

    Attributes:
      batch_size: examples per step.
      learning_rate, weight_decay, warmup_steps: AdamW with linear warm-up, then constant.
      max_epochs: upper bound on epochs.
      steps_per_epoch: steps between validations (None: one pass over the training data);
        with it the training data repeats, so validation, checkpoints and the time budget come
        at a steady rhythm on large datasets.
      patience: epochs without a better validation NDCG@10 before stopping (a plateau).
      plateau_decays: at a plateau, up to this many times, instead of stopping: go back to the
        best weights, multiply the learning rate by `plateau_decay_factor` and train on with the
        patience count reset (0: stop at the first plateau). A run stopped at a plateau resumes
        with its next decay when this is raised.
      plateau_decay_factor: the learning rate's factor at each plateau decay, in (0, 1).
      time_budget_minutes: stop after this much training time in this invocation (None: no
        limit); resuming a run grants the budget again.
      eval_batch_size: batch size of full-ranking evaluation.
      seed: seeds TensorFlow, NumPy, the data order and the evaluation's sampled negatives
        (a resumed run continues with the seed plus the epochs done).
      jit_compile: XLA-compile the train step.
      strategy: the tf.distribute strategy (`distribute.STRATEGIES`); "auto" picks multi-worker
        from TF_CONFIG, mirrored on several GPUs, else one device.
      sampled_negatives: negatives per example of the final sampled-protocol evaluation.
      sampled_protocol: where they are drawn from (`ranking.draw_negatives`): "unseen"
        (items outside the example's history and target) or "uniform" (any but the target).
      exclude_history: validation (hence model selection and early stopping) and the final
        evaluation remove history items from the ranking.
    """

    batch_size: int = 400
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    max_epochs: int = 200
    steps_per_epoch: Optional[int] = None
    patience: int = 10
    plateau_decays: int = 0
    plateau_decay_factor: float = 0.3
    time_budget_minutes: Optional[float] = None
    eval_batch_size: int = 1024
    seed: int = 0
    jit_compile: bool = False
    strategy: str = "auto"
    sampled_negatives: int = 100
    sampled_protocol: str = "unseen"
    exclude_history: bool = False

    def __post_init__(self):
        if self.sampled_protocol not in ranking.SAMPLED_PROTOCOLS:
            raise ValueError(f"sampled_protocol must be one of "
                             f"{', '.join(ranking.SAMPLED_PROTOCOLS)}, got "
                             f"{self.sampled_protocol!r}")
        if self.plateau_decays < 0:
            raise ValueError(f"plateau_decays must be >= 0, got {self.plateau_decays}")
        if not 0.0 < self.plateau_decay_factor < 1.0:
            raise ValueError(f"plateau_decay_factor must be in (0, 1), got "
                             f"{self.plateau_decay_factor}")
        if self.strategy not in distribute.STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(distribute.STRATEGIES)}, "
                             f"got {self.strategy!r}")


class WarmupConstant(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `rate` over `warmup_steps`, then constant, times
    `decay_factor ** decays`.

    Args:
      rate: the learning rate after warm-up.
      warmup_steps: steps of the linear warm-up (step s, 0-based, gets (s + 1) / warmup_steps).
      decays: None (no decay) or an int64 scalar `tf.Variable` read at every step: the plateau
        decays done (`Validation`).
      decay_factor: the learning rate's factor per decay.
    """

    def __init__(self, rate: float, warmup_steps: int, decays: Optional[tf.Variable] = None,
                 decay_factor: float = 1.0):
        self.rate, self.warmup_steps = rate, warmup_steps
        self.decays, self.decay_factor = decays, decay_factor

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        rate = self.rate * tf.minimum(1.0, step / max(1, self.warmup_steps))
        if self.decays is None:
            return rate
        return rate * tf.pow(tf.constant(self.decay_factor, tf.float32),
                             tf.cast(self.decays, tf.float32))

    def get_config(self):
        return {"rate": self.rate, "warmup_steps": self.warmup_steps}


class Validation(tf.keras.callbacks.Callback):
    """Model selection and early stopping: evaluates validation NDCG@10 (full ranking) after
    every epoch, tracks the best in `state` ("epoch", "best", "bad_epochs", "decays": the
    checkpointed variables), prints the epoch's line, and at a plateau
    (`patience` epochs without a better one) either decays the learning rate (`plateau`) or
    stops. `decide` (a `distribute.ChiefDecision`) makes the plateau the chief's on every worker.

    After each epoch: `metrics` (the validation metrics), `improved` (whether they are the best
    so far) and `lr_scale` (the learning rate's scale the epoch trained with); `seconds`:
    validation time of this invocation.

    `best_dirs`: the checkpoint directories a decay takes the best weights from, the first
    that holds them (`_load_best_of`)."""

    def __init__(self, valid: tf.data.Dataset, state, patience: int, decide,
                 exclude_history: bool = False, decays: int = 0, decay_factor: float = 0.3,
                 best_dirs: Sequence[str] = ()):
        super().__init__()
        self.valid, self.state, self.patience, self.decide = valid, state, patience, decide
        self.exclude_history = exclude_history   # validate as the final evaluation ranks
        self.decays, self.decay_factor, self.best_dirs = decays, decay_factor, best_dirs
        self.metrics: Dict[str, Any] = {}
        self.improved = False
        self.lr_scale = 1.0
        self.seconds = 0.0

    def plateau(self) -> bool:
        """At a plateau: True to stop, or (a decay left) go back to the best weights, scale the
        learning rate by the decay factor, reset the patience count and return False."""
        if _count(self.state["decays"]) >= self.decays:
            print(f"early stop: {self.patience} epochs without a better validation NDCG@10",
                  flush=True)
            return True
        if not _load_best_of(self.model, self.best_dirs):
            raise FileNotFoundError(f"no {BEST_WEIGHTS} in {', '.join(self.best_dirs)}")
        self.state["decays"].assign_add(1)
        self.state["bad_epochs"].assign(0)
        print(f"plateau: {self.patience} epochs without a better validation NDCG@10; from the "
              f"best weights, learning rate x{self.scale():.4g} (decay "
              f"{_count(self.state['decays'])} of {self.decays})", flush=True)
        return False

    def scale(self) -> float:
        """The learning rate's scale now: the decay factor to the decays done."""
        return self.decay_factor ** _count(self.state["decays"])

    def on_epoch_end(self, epoch, logs=None):
        started = time.time()
        self.metrics = evaluation.evaluate(self.model, self.valid,
                                           exclude_history=self.exclude_history)
        self.seconds += time.time() - started
        self.lr_scale = self.scale()
        self.state["epoch"].assign(epoch + 1)
        self.improved = self.metrics["ndcg@10"] > float(self.state["best"])
        if self.improved:
            self.state["best"].assign(self.metrics["ndcg@10"])
            self.state["bad_epochs"].assign(0)
        else:
            self.state["bad_epochs"].assign_add(1)
        print(f"epoch {epoch + 1}: loss {float((logs or {}).get('loss', 0.0)):.4f}, valid "
              f"recall@10 {self.metrics['recall@10']:.4f} ndcg@10 {self.metrics['ndcg@10']:.4f}"
              f"{' (best)' if self.improved else ''}", flush=True)
        if self.decide(int(self.state["bad_epochs"]) >= self.patience) and self.plateau():
            self.model.stop_training = True


def _load_best_of(model, checkpoint_dirs: Sequence[str]) -> bool:
    """Sets `model`'s weights from the first of `checkpoint_dirs` holding best weights; False
    where none does.

    A worker writes the best weights into its own directory when an epoch is better; a
    non-chief's is a scratch directory new to each invocation, so after a resume, until it has a
    better epoch of its own, the best weights are the chief's, from an earlier invocation: its
    own directory first (the chief's file of this invocation may still be being written), then
    the chief's."""
    for directory in checkpoint_dirs:
        if storage.exists(storage.join(directory, BEST_WEIGHTS)):
            load_best_weights(model, directory)
            return True
    return False


def _count(variable) -> int:
    """An integer scalar variable's value, a distributed (mirrored) one's too."""
    return int(tf.convert_to_tensor(variable))


class RunRecorder(tf.keras.callbacks.Callback):
    """Writes the run directory after every epoch (`validation` runs before it): the resumable
    checkpoint, the best weights when `validation` improved, TensorBoard scalars, and the epoch's
    entry of `log` (loss, steps, validation metrics, seconds since the run's first invocation)
    to `history_path`."""

    def __init__(self, validation: Validation, manager: tf.train.CheckpointManager, writer,
                 log: list, history_path: str):
        super().__init__()
        self.validation, self.manager, self.writer = validation, manager, writer
        self.log, self.history_path = log, history_path
        self.started = time.time()
        self.steps = 0   # of the current epoch
        # A resumed run's history continues the earlier invocations' clock.
        self.seconds_before = log[-1]["seconds"] if log else 0.0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        metrics, loss = self.validation.metrics, float((logs or {}).get("loss", 0.0))
        with self.writer.as_default(step=epoch + 1):
            tf.summary.scalar("train/loss", loss)
            for key in ("recall@10", "ndcg@10", "recall@5", "ndcg@5"):
                tf.summary.scalar(f"valid/{key}", metrics[key])
        self.manager.save(checkpoint_number=epoch + 1)
        if self.validation.improved:
            save_best_weights(self.model, self.manager.directory)
        self.log.append({"epoch": epoch + 1, "loss": loss, "steps": self.steps,
                         "learning_rate_scale": round(self.validation.lr_scale, 6),
                         **{f"valid_{k}": v for k, v in metrics.items() if k != "examples"},
                         "seconds": round(self.seconds_before + time.time() - self.started,
                                          1)})
        self.steps = 0
        storage.write_json(self.history_path, self.log)


class TimeBudget(tf.keras.callbacks.Callback):
    """Stops training once `seconds` of this invocation have passed, checked after every step
    (so a budget can end an epoch early) and after every epoch; `decide` makes the stop the
    chief's on every worker."""

    def __init__(self, seconds: float, decide):
        super().__init__()
        self.seconds, self.decide = seconds, decide
        self.started = time.time()
        self.out_of_time = False

    def _over(self) -> bool:
        return time.time() - self.started > self.seconds

    def on_train_batch_end(self, batch, logs=None):
        if self.decide(self._over()):
            self.out_of_time = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.out_of_time or self.decide(self._over()):
            print("stopping: time budget reached", flush=True)
            self.model.stop_training = True


def train(prepared_dir: str, codes_dir: str, output_dir: str, model_name: str = "ccfrec",
          model_config: ModelConfig = ModelConfig(), train_config: TrainConfig = TrainConfig(),
          verbose: int = 1) -> Dict[str, Any]:
    """Trains `model_name` on a prepared dataset and its code artifact (`train_model`).

    Returns:
      {"valid": metrics, "test": metrics, "epochs": n, "train_seconds": s, ...}; unless
      `train_config.exclude_history`, also "test_excluding_history": the test metrics with the
      history items left out of the ranking (the published protocol).
    """
    from tf_ccfrec.codes import artifact as artifact_lib

    artifact = artifact_lib.load(codes_dir)
    data = inputs.PreparedData(prepared_dir, artifact.item_ids, model_config.max_history)
    return train_model(data, artifact, output_dir, model_name, model_config, train_config, verbose,
               codes_dir=codes_dir)[0]


def train_model(data: inputs.TrainingData, artifact, output_dir: str,
                model_name: str = "ccfrec", model_config: ModelConfig = ModelConfig(),
                train_config: TrainConfig = TrainConfig(), verbose: int = 1,
                codes_dir: Optional[str] = None, initial_weights: Optional[str] = None):
    """Trains `model_name` on `data` (`inputs.PreparedData`, or the TFX Trainer's data over
    Transform's output) with the items of `artifact` in `data.item_ids` order; writes to `output_dir`: `checkpoints/`
    (resumable), `tensorboard/`, `history.json`, `metrics.json`, `config.json`, item_ids.txt.

    `initial_weights`: a run directory whose best weights start the model (warm start; its
    model must have the same shapes: CCFRec's weights do not depend on the catalog). A
    checkpoint in `output_dir` (an interrupted run) takes precedence.

    Returns:
      (metrics as `train` returns them, the model with its best weights).
    """
    tf.keras.utils.set_random_seed(train_config.seed)
    if list(artifact.item_ids) != list(data.item_ids):
        raise ValueError("the code artifact's item order differs from the data's; "
                         "use tf_ccfrec.codes.artifact.reorder")
    strategy = distribute.make_strategy(train_config.strategy)
    replicas = strategy.num_replicas_in_sync
    multi_worker = distribute.is_multi_worker(strategy)
    every_position = model_config.objective == "all_positions"
    if every_position and not hasattr(data, "sequence_dataset"):
        raise ValueError(f"objective 'all_positions' needs whole training sequences, which "
                         f"{type(data).__name__} does not provide; use objective 'last'")
    steps_per_epoch = train_config.steps_per_epoch
    if steps_per_epoch is None and multi_worker:
        # Workers' shards of a finite dataset end at different steps, and one that runs out
        # leaves the others waiting in a collective: every worker runs the same number of
        # steps, one pass's worth, over the repeated data.
        steps_per_epoch = max(1, (data.train_sequences() if every_position
                                  else data.train_examples()) // train_config.batch_size)

    def dataset(split, training, seed=train_config.seed):
        # Distributed training needs equal replica batches: drop the (reshuffled) remainder.
        options = dict(shuffle=training, seed=seed, drop_remainder=training and replicas > 1,
                       repeat=training and steps_per_epoch is not None)
        if training and every_position:
            batches = data.sequence_dataset(train_config.batch_size, **options)
        else:
            batches = data.dataset(
                split, train_config.batch_size if training else train_config.eval_batch_size,
                **options)
        if training and multi_worker:
            # Shard by element, not by file: every worker reads the same shuffled stream and
            # takes its part of each global batch (a split may be one file), so the global
            # batches are one worker's.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = \
                tf.data.experimental.AutoShardPolicy.DATA
            batches = batches.with_options(options)
        return batches

    valid_data, test_data = dataset("valid", False), dataset("test", False)
    with strategy.scope():
        model = build_model(model_name, model_config, artifact, seed=train_config.seed)
        # The plateau decays done, checkpointed with the run (`Validation`).
        decays = tf.Variable(0, trainable=False, dtype=tf.int64)
        optimizer = tf.keras.optimizers.AdamW(
            learning_rate=WarmupConstant(train_config.learning_rate, train_config.warmup_steps,
                                         decays, train_config.plateau_decay_factor),
            weight_decay=train_config.weight_decay)
        model.compile(optimizer=optimizer, jit_compile=train_config.jit_compile)
        # Build the variables before restoring: one loss evaluation on a batch.
        model.compute_loss(next(iter(valid_data)), training=False)
        if initial_weights:
            load_best_weights(model, os.path.join(initial_weights, "checkpoints"))
    if model_config.negatives_from == "trained":
        model.set_negative_pool(np.flatnonzero(np.asarray(data.interactions())[1:] > 0) + 1)
    # Only the chief writes `output_dir`; every worker restores from the chief's checkpoints.
    with distribute.worker_directory(output_dir, strategy) as write_dir:
        result = _train_loop(model, optimizer, decays, data, dataset, valid_data, test_data,
                             output_dir, write_dir, model_name, model_config, train_config,
                             steps_per_epoch, distribute.ChiefDecision(strategy), replicas,
                             verbose, codes_dir, initial_weights)
    return result, model


def _train_loop(model, optimizer, decays, data, dataset, valid_data, test_data, output_dir,
                write_dir, model_name, model_config, train_config, steps_per_epoch, decide,
                replicas, verbose, codes_dir, initial_weights=None):
    """`train_model` after the model is built: restores from `output_dir`, writes to `write_dir`.
    `decays`: the plateau decays done, the variable the optimizer's schedule reads."""
    storage.makedirs(write_dir)
    state = {"epoch": tf.Variable(0, dtype=tf.int64), "best": tf.Variable(-1.0, dtype=tf.float64),
             "bad_epochs": tf.Variable(0, dtype=tf.int64),
             "decays": decays}
    # Checkpoints from before plateau decays lack "decays": it restores as 0.
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, "checkpoints"),
                                         max_to_keep=2)
    history_path = os.path.join(write_dir, "history.json")
    # This worker's best weights, then the chief's (`_load_best_of`).
    best_dirs = list(dict.fromkeys([manager.directory, os.path.join(output_dir, "checkpoints")]))
    log = []
    latest = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
    if latest:
        checkpoint.restore(latest)
        chief_history = os.path.join(output_dir, "history.json")
        if storage.exists(chief_history):
            log = [h for h in storage.read_json(chief_history)
                   if h["epoch"] <= int(state["epoch"])]
        print(f"resuming after epoch {int(state['epoch'])} from {latest}", flush=True)
    first_epoch = int(state["epoch"])
    if first_epoch:
        # A resumed run draws a new data order and new masks (the seed advanced by the epochs
        # done) instead of replaying the first invocation's from its start.
        tf.keras.utils.set_random_seed(train_config.seed + first_epoch)
    train_data = dataset("train", True, seed=train_config.seed + first_epoch)
    writer = tf.summary.create_file_writer(os.path.join(write_dir, "tensorboard"))
    validation = Validation(valid_data, state, train_config.patience, decide,
                            exclude_history=train_config.exclude_history,
                            decays=train_config.plateau_decays,
                            decay_factor=train_config.plateau_decay_factor,
                            best_dirs=best_dirs)
    validation.set_model(model)
    recorder = RunRecorder(validation, manager, writer, log, history_path)
    callbacks = [validation, recorder]
    if train_config.time_budget_minutes is not None:
        callbacks.append(TimeBudget(train_config.time_budget_minutes * 60, decide))
    started = time.time()
    # A run resumed at a plateau (stopped there, or interrupted before its decay took effect)
    # decays now if it has a decay left.
    at_plateau = decide(int(state["bad_epochs"]) >= train_config.patience)
    if int(state["epoch"]) < train_config.max_epochs and not (at_plateau and validation.plateau()):
        model.fit(train_data, epochs=train_config.max_epochs, initial_epoch=int(state["epoch"]),
                  steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
    train_seconds = time.time() - started  # this invocation's
    _load_best_of(model, best_dirs)
    head, cold = data.head(), data.cold()

    def final(split_data, with_ranks=False, exclude_history=train_config.exclude_history,
              sampled_negatives=train_config.sampled_negatives):
        return evaluation.evaluate(model, split_data, exclude_history=exclude_history,
                                   sampled_negatives=sampled_negatives, head=head,
                                   seed=train_config.seed, cold=cold,
                                   sampled_protocol=train_config.sampled_protocol,
                                   with_ranks=with_ranks)

    def final_test(ranks_name, **options):
        # Each test example's 0-based full-ranking rank, in the test split's order: what a
        # paired test of two runs on the same data compares (`tf_ccfrec.training.significance`).
        metrics = final(test_data, with_ranks=True, **options)
        storage.save_npz(os.path.join(write_dir, ranks_name), ranks=metrics.pop("ranks"))
        return metrics

    test = final_test(ranks_file("test"))
    extra = {}
    if not train_config.exclude_history:
        # Published full-ranking numbers (RecTools, RecBole) leave the user's history items
        # out of the ranking; the same model under that protocol, beside this project's.
        extra["test_excluding_history"] = final_test(ranks_file("test", True),
                                                     exclude_history=True, sampled_negatives=0)

    result = {"model": model_name, "epochs": int(state["epoch"]),
              "best_valid_ndcg@10": float(state["best"]),
              "plateau_decays_done": _count(state["decays"]),
              # All invocations of a resumed run together.
              "train_seconds": round(recorder.seconds_before + train_seconds, 1),
              "validation_seconds": round(validation.seconds, 1), "replicas": replicas,
              "valid": final(valid_data), "test": test, **extra}
    steps_run = sum(h["steps"] for h in log if h["epoch"] > first_epoch)
    if steps_run > 0:
        # Training steps only: per-epoch validation is left out.
        result["train_examples_per_second"] = round(
            steps_run * train_config.batch_size
            / max(1e-9, train_seconds - validation.seconds), 1)
    # The process's peak resident memory so far (training and evaluation; Linux reports KiB).
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    storage.write_json(history_path, log)
    storage.write_json(os.path.join(write_dir, "config.json"), {
        "model": model_name, "model_config": dataclasses.asdict(model_config),
        "train_config": dataclasses.asdict(train_config), **data.source(),
        "codes": storage.absolute(codes_dir) if codes_dir else None,
        "initial_weights": initial_weights})
    storage.write_text(storage.join(write_dir, ITEM_ORDER),
                       "".join(f"{item}\n" for item in data.item_ids))
    storage.write_json(os.path.join(write_dir, "metrics.json"), result)
    return result

