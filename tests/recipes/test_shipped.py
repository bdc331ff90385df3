"""Every recipe in recipes/ parses; the LeNet-5 ones also resolve on their model."""

import pathlib
import re

import pytest

from tfadmm import Quantize
from tfadmm.recipes import load_recipe
from tfadmm.recipes.checks import check_against_model, planned_rates
from tfadmm.recipes.stability import stability_warnings
from tfadmm.targets import match_layers

RECIPES = sorted((pathlib.Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
FAST = [p for p in RECIPES if p.stem.startswith(("lenet5", "quickstart", "resnet20"))]


def test_there_is_a_recipe_for_every_experiment_of_the_paper():
    assert {p.stem for p in RECIPES} >= {
        "quickstart", "lenet5_mnist_246x", "lenet5_mnist_binary", "alexnet_imagenet_36x",
        "vgg16_imagenet_34x", "vgg16_cifar10_11x", "vgg16_cifar10_40x", "vgg16_cifar10_binary",
        "resnet18_imagenet_6x", "resnet50_imagenet_8x", "mobilenetv2_cifar10",
        "resnet20_fmnist_8x", "resnet20_fmnist_4bit",
    }


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses(path):
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    assert recipe.stages


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_admm_phases_stay_within_the_optimizers_stable_step(path):
    assert stability_warnings(load_recipe(path)) == []


@pytest.mark.parametrize("path", FAST, ids=lambda p: p.stem)
def test_lenet_recipes_resolve_on_their_model(path):
    check_against_model(load_recipe(path))


def test_planned_rates_of_the_headline_recipes():
    recipe = load_recipe(next(p for p in RECIPES if p.stem == "lenet5_mnist_246x"))
    rates = planned_rates(recipe, check_against_model(recipe))
    assert [round(r) for r in rates] == [123, 246]


def _recipe(name):
    return load_recipe(RECIPES[[p.stem for p in RECIPES].index(name)])


def test_resnet20_recipes_keep_the_first_conv_dense_and_allocate_the_rest_by_sensitivity():
    pruned = _recipe("resnet20_fmnist_8x")
    model = check_against_model(pruned)
    assert model.input_shape == (None, 28, 28, 1)
    assert [round(r, 1) for r in planned_rates(pruned, model)] == [4.0, 8.0]
    assert [(s.allocate.rate, s.allocate.method, s.allocate.layers) for s in pruned.stages] == [
        (4, "sensitivity", ("conv*_block*", "fc")), (8, "sensitivity", ("conv*_block*", "fc"))]
    allocated = set(match_layers(model, pruned.stages[-1].allocate.layers))
    assert "conv1" not in allocated and len(allocated) == 19  # conv1 stays dense
    assert all(not stage.retrain.recalibrate_bn for stage in pruned.stages)  # measured: off

    quantized = _recipe("resnet20_fmnist_4bit")
    check_against_model(quantized)
    assert [stage.target_dict for stage in quantized.stages] == [
        {"conv*_block*": Quantize(4, per_channel=True)},
        {"conv1": Quantize(8, per_channel=True), "fc": Quantize(8, per_channel=True)},
    ]


# The paper's ImageNet rates (Ye et al. 2019): the recipe's name and its stages' names state them.
PAPER_RATES = {"alexnet_imagenet_36x": 36, "vgg16_imagenet_34x": 34, "resnet18_imagenet_6x": 6,
               "resnet50_imagenet_8x": 8}


@pytest.mark.parametrize("name", sorted(PAPER_RATES))
def test_imagenet_recipes_plan_the_papers_rates(name):
    """Each stage plans the rate its name states (`prune-18x`) within 5 % (sparsities are rounded
    per layer group); the last one at least the paper's. Computed from the targets and the kernel
    shapes, as `tfadmm validate` prints them, without training."""
    recipe = load_recipe(RECIPES[[p.stem for p in RECIPES].index(name)])
    rates = planned_rates(recipe, check_against_model(recipe))
    stated = [int(re.fullmatch(r"prune-(\d+)x", stage.name).group(1)) for stage in recipe.stages]
    assert stated[-1] == PAPER_RATES[name]
    for stage, rate, figure in zip(recipe.stages, rates, stated, strict=True):
        assert rate == pytest.approx(figure, rel=0.05), stage.name
    assert rates[-1] >= PAPER_RATES[name]


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in RECIPES if p not in FAST], ids=lambda p: p.stem)
def test_big_recipes_resolve_on_their_model(path):
    check_against_model(load_recipe(path))
