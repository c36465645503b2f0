"""rnnlab: build, train, instrument and dissect recurrent networks from scratch in NumPy."""

from .errors import CheckpointError, InputError, InputTypeError, RnnlabError, RunDirError
from .losses import softmax_cross_entropy
from .models import SequenceClassifier, SequenceTagger, StepRegressor
from .modules import Dropout, Linear, Module
from .recurrent import GRU, LSTM, RNN, Recurrent

__version__ = "0.1.0"

__all__ = [
    "RNN", "LSTM", "GRU", "Recurrent", "Module", "Linear", "Dropout", "SequenceClassifier", "SequenceTagger",
    "StepRegressor", "softmax_cross_entropy", "RnnlabError", "InputError", "InputTypeError",
    "CheckpointError", "RunDirError",
]
