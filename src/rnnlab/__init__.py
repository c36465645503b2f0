"""rnnlab: build, train, instrument and dissect recurrent networks from scratch in NumPy."""

__version__ = "0.1.0"

from rnnlab.data.task import Task  # noqa: E402
from rnnlab.errors import CheckpointError, InputError, InputTypeError, RnnlabError, RunDirError  # noqa: E402
from rnnlab.experiments.run import resume, train, train_stack  # noqa: E402
from rnnlab.nn.heads import CharLM, SequenceClassifier, SequenceRegressor, SequenceTagger, StepRegressor  # noqa: E402
from rnnlab.nn.losses import mse, softmax_cross_entropy  # noqa: E402
from rnnlab.nn.modules import Dropout, Embedding, Linear, Module  # noqa: E402
from rnnlab.nn.optim import SGD, Adagrad, Adam, CosineLR, RMSprop, StepLR  # noqa: E402
from rnnlab.nn.recurrent import CTRNN, GRU, LSTM, RNN, Recurrent  # noqa: E402
from rnnlab.training.config import PRESETS, TrainConfig  # noqa: E402
from rnnlab.training.loop import Callback, EpochResult, Trainer  # noqa: E402
from rnnlab.training.stack import StackTrainer  # noqa: E402

__all__ = [
    "RNN", "LSTM", "GRU", "CTRNN", "Recurrent", "Module", "Linear", "Dropout", "Embedding",
    "SequenceClassifier", "SequenceTagger", "SequenceRegressor", "StepRegressor", "CharLM",
    "SGD", "Adam", "Adagrad", "RMSprop", "StepLR", "CosineLR", "Task", "Trainer", "train", "resume",
    "StackTrainer", "train_stack",
    "Callback", "EpochResult", "TrainConfig",
    "PRESETS", "softmax_cross_entropy", "mse", "RnnlabError", "InputError", "InputTypeError",
    "CheckpointError", "RunDirError",
]
