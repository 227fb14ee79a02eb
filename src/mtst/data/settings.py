"""Where a dataset lives and how it is read: the `data` section of a config (and of a task with its own corpus)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mtst.data.formats import FORMATS

DATA_FORMATS = ("auto", *FORMATS)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dir: str | None = None
    format: str = "auto"
    train: str = "train"
    dev: str | None = "dev"
    test: str | None = "test"
    text_column: str = "text"
    label_column: str = "label"
    # Refuse repairable problems (a BOM, mixed column separators, I- opening an entity) instead of warning.
    strict: bool = False
    # For a corpus without a dev split (ag_news): this seeded fraction of train is held out as dev.
    dev_from_train: float = Field(0.0, ge=0.0, lt=1.0)
    # For one file holding everything (an annotation tool's export): this seeded fraction of train is held
    # out as test (before dev is); needs `test: null`, so a named test split is never silently replaced.
    test_from_train: float = Field(0.0, ge=0.0, lt=1.0)
    # Names for sentence labels stored as codes, e.g. AG News' {"1": World, "2": Sports, ...}; when set,
    # every label read must have one.
    label_names: dict[str, str] = {}

    @model_validator(mode="after")
    def _held_out_fractions(self) -> DataConfig:
        if self.test_from_train and self.test is not None:
            raise ValueError(f"test_from_train holds test out of train: set test: null (it names {self.test!r})")
        if self.dev_from_train + self.test_from_train >= 1:
            raise ValueError("dev_from_train + test_from_train must leave some of train to train on")
        return self

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in DATA_FORMATS:
            raise ValueError(f"unknown data format {value!r}; choose one of {', '.join(DATA_FORMATS)}")
        return value
