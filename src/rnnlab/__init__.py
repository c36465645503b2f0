"""rnnlab: build, train, instrument and dissect recurrent networks from scratch in NumPy."""

__version__ = "0.1.0"

from .config import PRESETS, TrainConfig  # noqa: E402
from .errors import CheckpointError, InputError, InputTypeError, RnnlabError, RunDirError  # noqa: E402
from .losses import mse, softmax_cross_entropy  # noqa: E402
from .models import CharLM, SequenceClassifier, SequenceRegressor, SequenceTagger, StepRegressor  # noqa: E402
from .modules import Dropout, Embedding, Linear, Module  # noqa: E402
from .optim import SGD, Adagrad, Adam, CosineLR, RMSprop, StepLR  # noqa: E402
from .recurrent import GRU, LSTM, RNN, Recurrent  # noqa: E402
from .tasks import Task  # noqa: E402
from .train import Trainer  # noqa: E402

__all__ = [
    "RNN", "LSTM", "GRU", "Recurrent", "Module", "Linear", "Dropout", "Embedding",
    "SequenceClassifier", "SequenceTagger", "SequenceRegressor", "StepRegressor", "CharLM",
    "SGD", "Adam", "Adagrad", "RMSprop", "StepLR", "CosineLR", "Task", "Trainer", "TrainConfig",
    "PRESETS", "softmax_cross_entropy", "mse", "RnnlabError", "InputError", "InputTypeError",
    "CheckpointError", "RunDirError",
]
