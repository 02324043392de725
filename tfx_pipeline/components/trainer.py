"""CCFRecTrainer: TFX's Trainer with one more input, the semantic codes.

The model's item representation needs the code artifact, which the stock Trainer has no
channel for; this component is the stock Trainer spec plus a `codes` channel, and its executor
is the stock `GenericExecutor` that also hands `fn_args.codes_uri` to `run_fn`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from tfx_pipeline.components.semantic_codes import SemanticCodes

CODES_KEY = "codes"


class CCFRecTrainerSpec(standard_component_specs.TrainerSpec):
    INPUTS = {**standard_component_specs.TrainerSpec.INPUTS,
              CODES_KEY: ChannelParameter(type=SemanticCodes)}


class Executor(trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                   output_dict: Dict[str, List[types.Artifact]],
                   exec_properties: Dict[str, Any]):
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        fn_args.codes_uri = artifact_utils.get_single_uri(input_dict[CODES_KEY])
        return fn_args


class CCFRecTrainer(base_component.BaseComponent):
    """Trains with `run_fn` on transformed examples, the transform graph and the codes.

    Args:
      examples: Transform's transformed examples (splits train, valid, test).
      transform_graph: Transform's graph (vocabulary; exported for serving).
      codes: SemanticCodesGen's output.
      run_fn: module path of the training function.
      schema, hyperparameters: optional, as for the stock Trainer.
      base_model: optional, a Model to warm-start from (`run_fn` starts from its run's best
        weights).
      train_args, eval_args: the training and validation splits.
      custom_config: see `tfx_pipeline.models.model`.
      custom_executor_spec: another executor, e.g. `vertex_trainer.VertexExecutor`.
    """

    SPEC_CLASS = CCFRecTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
                 codes: types.BaseChannel, run_fn: str,
                 schema: Optional[types.BaseChannel] = None,
                 hyperparameters: Optional[types.BaseChannel] = None,
                 base_model: Optional[types.BaseChannel] = None,
                 train_args: Optional[trainer_pb2.TrainArgs] = None,
                 eval_args: Optional[trainer_pb2.EvalArgs] = None,
                 custom_config: Optional[Dict[str, Any]] = None,
                 custom_executor_spec: Optional[executor_spec.ExecutorSpec] = None):
        spec = CCFRecTrainerSpec(
            examples=examples, transform_graph=transform_graph, codes=codes, schema=schema,
            hyperparameters=hyperparameters, base_model=base_model,
            train_args=train_args or trainer_pb2.TrainArgs(splits=["train"]),
            eval_args=eval_args or trainer_pb2.EvalArgs(splits=["valid"]),
            run_fn=run_fn, custom_config=json_utils.dumps(custom_config or {}),
            model=channel.Channel(type=standard_artifacts.Model),
            model_run=channel.Channel(type=standard_artifacts.ModelRun))
        super().__init__(spec=spec, custom_executor_spec=custom_executor_spec)
