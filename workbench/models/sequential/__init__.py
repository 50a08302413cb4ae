"""Next-item recommenders on leave-one-out sequences (:mod:`workbench.data.sequences`): the shared contract and
training loop (:mod:`.base`), SASRec with BCE or full-softmax loss (:mod:`.sasrec`), GRU4Rec (:mod:`.gru4rec`)
and the references (popularity, the synthetic catalogue's next-item oracle: :mod:`.references`)."""
from . import gru4rec, references, sasrec  # noqa: F401  (each registers its models)
