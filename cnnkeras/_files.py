"""The names of the files a run folder and an export folder hold, declared once, in a module
that imports nothing (the server of ``cnnkeras serve`` starts without TensorFlow)."""

# a run folder (train, finetune)
MODEL_FILE = "model.keras"  # the best epoch's model (float32, whatever the training precision)
CONFIG_FILE = "config.json"  # the record of a training run
HISTORY_FILE = "history.csv"  # one row an epoch
CHECKPOINTS = "checkpoint"  # the folder of the last finished epoch's state, for --resume
REPORT_FILE = "report.html"  # the evaluation report (evaluate writes one too)
BATCH_FILE = "train_batch.png"  # the first training step's images as the model sees them
SPLITS_FILE = "splits.json"  # the split a run trained on (export copies it)
LABELS_FILE = "labels.txt"  # class names, one a line, in output order (both folders)
CURVES_FILE = "training_curves.png"  # loss and accuracy by epoch (the report shows it)
LR_FIND_FILE = "lr_find.png"  # the learning-rate range test's curve, when lr was 'auto'
SKIPPED_FILE = "skipped.txt"  # the files that failed to decode during training
TRAINABLE_FILE = "trainable_layers.json"  # fine-tuning: the layers each phase trained
LOGS_DIR = "logs"  # TensorBoard's
CACHE_DIR = "cache"  # the decoded images' cache, removed when the run ends

# an export folder (export)
PREPROCESS_FILE = "preprocess.json"  # the record of an export
PARITY_FILE = "parity.json"  # the export's report
CARD_FILE = "model_card.md"
