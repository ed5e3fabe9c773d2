"""A tiny Lightning fit and test (CPU) with whirr's logger beside a logger that records
what Lightning hands its loggers; prints one JSON line: the run's id and that record, for
the test to compare the run's files with."""

import json

import lightning
import torch

from whirr.integrations.lightning import WhirrLogger


class Recorder(lightning.pytorch.loggers.Logger):
    """Keeps every (step, metrics) Lightning logs, as plain numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []

    name = "recorder"
    version = "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append({"step": step, **{k: float(v) for k, v in metrics.items()}})


class Tiny(lightning.LightningModule):
    def __init__(self, lr: float, layers: dict) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, layers["hidden"]), torch.nn.Linear(layers["hidden"], 1)
        )

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def training_step(self, batch, index):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, index):
        self.log("val_loss", self.loss(batch))

    def test_step(self, batch, index):
        self.log("test_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


lightning.seed_everything(0, verbose=False)
x = torch.rand(24, 3)
y = x @ torch.tensor([1.0, 2.0, 3.0])
data = torch.utils.data.TensorDataset(x, y)
train = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(16)), batch_size=4)
valid = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(16, 24)), batch_size=4)
whirr_logger = WhirrLogger(name="pl-tiny", tags=["lightning"], system_metrics=False)
recorder = Recorder()
trainer = lightning.Trainer(
    max_epochs=2,
    logger=[whirr_logger, recorder],
    log_every_n_steps=1,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    accelerator="cpu",
)
model = Tiny(lr=0.1, layers={"hidden": 4})
trainer.fit(model, train, valid)
tested = trainer.test(model, valid, verbose=False)
print(
    json.dumps(
        {
            "run_id": whirr_logger.run.run_id,
            "version": whirr_logger.version,
            "status": whirr_logger.run.status,
            "rows": recorder.rows,
            "train_steps": [r["step"] for r in recorder.rows if "train_loss" in r],
            "test_loss": tested[0]["test_loss"],
        }
    )
)
