"""A tiny Hugging Face Trainer run (a 1-layer BERT, CPU, no download) with whirr's
callback, then an evaluate(); prints one JSON line: the run's id and the Trainer's own
log history, for the test to compare the run's files with."""

import json

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from whirr.integrations.transformers import WhirrCallback

torch.manual_seed(0)
config = BertConfig(
    vocab_size=32,
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=16,
    num_labels=2,
)
model = BertForSequenceClassification(config)
ids = torch.randint(0, 32, (24, 6))
data = [
    {"input_ids": ids[i], "attention_mask": torch.ones(6, dtype=torch.long), "labels": i % 2}
    for i in range(24)
]
args = TrainingArguments(
    "out",
    num_train_epochs=2,
    per_device_train_batch_size=4,
    per_device_eval_batch_size=8,
    learning_rate=0.01,
    logging_steps=1,
    eval_strategy="epoch",
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
    seed=0,
)
callback = WhirrCallback(config={"data": "random"}, name="hf-tiny", system_metrics=False)
trainer = Trainer(
    model=model, args=args, train_dataset=data[:16], eval_dataset=data[16:], callbacks=[callback]
)
trainer.train()
trainer.evaluate()  # after training: the same run
print(
    json.dumps(
        {
            "run_id": callback.run.run_id,
            "status": callback.run.status,
            "global_step": trainer.state.global_step,
            "log_history": trainer.state.log_history,
        }
    )
)
