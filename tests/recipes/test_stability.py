from tfadmm.recipes import parse_recipe
from tfadmm.recipes.stability import sgd_limit, stability_warnings, steps_per_epoch

# The CIFAR recipes before issue 13: 60 Z/U updates at rho x1.3, SGD lr 0.01, momentum 0.9.
ONCE_AN_EPOCH = """\
version: 1
name: cifar
model: {zoo: vgg16_cifar}
data: {name: cifar10, batch_size: 128, validation_split: 0.1}
stages:
  - name: prune
    targets: {conv*: 0.8}
    admm:
      epochs: 60
      rho: 1.0e-3
      rho_multiplier: 1.3
      updates_per_epoch: 1
      optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.9}
"""


def test_steps_per_epoch_from_the_dataset_size():
    assert steps_per_epoch(parse_recipe(ONCE_AN_EPOCH, "x.yaml")) == 352  # 45,000 / 128
    unknown = parse_recipe(ONCE_AN_EPOCH.replace("cifar10", "my_images"), "x.yaml")
    assert steps_per_epoch(unknown) is None
    assert sgd_limit(0.9) == 3.8 and sgd_limit(None) == 2.0


def test_sixty_updates_at_rho_x1_3_pass_sgds_limit_at_update_49():
    assert stability_warnings(parse_recipe(ONCE_AN_EPOCH, "x.yaml")) == [
        "x.yaml:9: stages[0].admm: learning rate x rho reaches 3.83 at Z/U update 49 of 60 "
        "(rho 383), beyond SGD's stable 3.8 = 2 x (1 + momentum): expect a NaN loss; make fewer "
        "Z/U updates (updates_per_epoch, update_every_steps), lower rho_multiplier, or set "
        "rho_max <= 380"
    ]


def test_ten_updates_a_rho_cap_or_an_adaptive_optimizer_pass():
    for change in ("rho: 1.0e-3\n      update_every_steps: 2112",
                   "rho: 1.0e-3\n      rho_max: 100"):
        text = ONCE_AN_EPOCH.replace("rho: 1.0e-3", change)
        assert stability_warnings(parse_recipe(text, "x.yaml")) == []
    adam = ONCE_AN_EPOCH.replace("{name: sgd, learning_rate: 0.01, momentum: 0.9}", "{name: adam}")
    assert stability_warnings(parse_recipe(adam, "x.yaml")) == []


def test_the_learning_rate_at_each_update_counts():
    # Cosine decay: lr x rho peaks at 0.36 (update 52), within the limit.
    cosine = ONCE_AN_EPOCH.replace("momentum: 0.9}", "momentum: 0.9, schedule: cosine}")
    assert stability_warnings(parse_recipe(cosine, "x.yaml")) == []
    # Divided by 10 after 30 epochs: the limit is passed 9 updates later.
    step = ONCE_AN_EPOCH.replace("momentum: 0.9}", "momentum: 0.9, schedule: step, "
                                 "decay_epochs: 30}")
    [warning] = stability_warnings(parse_recipe(step, "x.yaml"))
    assert "at Z/U update 58 of 60" in warning


def test_unknown_epoch_length_with_update_every_steps_is_not_guessed():
    text = ONCE_AN_EPOCH.replace("cifar10", "my_images").replace(
        "rho: 1.0e-3", "rho: 1.0e-3\n      update_every_steps: 10")
    assert stability_warnings(parse_recipe(text, "x.yaml")) == []
    assert stability_warnings(parse_recipe(text, "x.yaml"), steps=352) != []


def test_the_default_schedule_ends_at_rho_1_within_sgds_limit_and_names_rho_final_beyond():
    default = ONCE_AN_EPOCH.replace("      rho_multiplier: 1.3\n", "")
    assert stability_warnings(parse_recipe(default, "x.yaml")) == []  # 0.01 x 1.0 at the end
    fast = default.replace("learning_rate: 0.01", "learning_rate: 5.0")
    [warning] = stability_warnings(parse_recipe(fast, "x.yaml"))
    assert warning.endswith("make fewer Z/U updates (updates_per_epoch, update_every_steps), "
                            "lower rho_final, or set rho_max <= 0.76")
