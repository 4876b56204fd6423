"""infra/activity-log.json, the subscription-scope template: the Activity Log's Administrative category exported to the storage
account or the Event Hub of infra/azuredeploy.json, and the optional Monitoring Reader role, named as the main template names
it. Each rule is a check, run on the template and on broken copies of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.arm_expressions import Environment, assert_mutation_caught, deployed_resources, edit, nested, subscription_scope
from tests.test_infra_template import BUILTIN_ROLES, EXPECTED_API_VERSIONS, GUID, ROLE_BY_GUID, Json, _load, _main, _set

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "infra" / "activity-log.json"
PARAMETERS_PATH = ROOT / "infra" / "activity-log.parameters.example.json"
MAIN_PATH = ROOT / "infra" / "azuredeploy.json"
SUBSCRIPTION = "44444444-4444-4444-4444-444444444444"
PRINCIPAL = "55555555-5555-5555-5555-555555555555"
ACCOUNT = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apim-inventory/providers/Microsoft.Storage/storageAccounts/apiminv1"
RULE = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apim-inventory/providers/Microsoft.EventHub/namespaces/evh-x-logs"
        "/authorizationRules/apim-inventory-diagnostics")
TYPES = {"Microsoft.Insights/diagnosticSettings", "Microsoft.Authorization/roleAssignments"}


@pytest.fixture(scope="module")
def template() -> Json:
    return _load(TEMPLATE_PATH)


def _deployed(template: Json, **parameters: Any) -> list[tuple[Environment, Json]]:
    return list(deployed_resources(Environment(template, parameters, subscription_scope(SUBSCRIPTION)), only_deployed=True))


def _of(template: Json, kind: str, **parameters: Any) -> list[tuple[Environment, Json]]:
    return [(environment, resource) for environment, resource in _deployed(template, **parameters) if resource["type"] == kind]


def test_the_files() -> None:
    template, example = _load(TEMPLATE_PATH), _load(PARAMETERS_PATH)
    assert template["$schema"] == "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
    assert template["contentVersion"] == example["contentVersion"] == "1.0.0.0"
    assert example["$schema"].endswith("/deploymentParameters.json#")
    assert set(example["parameters"]) <= set(template["parameters"]), "the example sets a parameter the template does not declare"
    assert all(set(entry) == {"value"} for entry in example["parameters"].values())
    assert {name for name, spec in template["parameters"].items() if "defaultValue" not in spec} <= set(example["parameters"])
    values = {name: entry["value"] for name, entry in example["parameters"].items()}
    assert _of(template, "Microsoft.Insights/diagnosticSettings", **values), "the example deploys"


def test_resource_types_and_api_versions_agree_with_the_main_template(template: Json) -> None:
    assert {resource["type"] for resource in template["resources"]} == TYPES
    for resource in template["resources"]:
        assert resource["apiVersion"] == EXPECTED_API_VERSIONS[resource["type"]], resource["type"]


def check_administrative_only(template: Json) -> None:
    """One diagnostic setting, the Administrative category only, to exactly the one destination chosen."""
    (environment, setting), = _of(template, "Microsoft.Insights/diagnosticSettings", storageAccountId=ACCOUNT)
    assert "condition" not in setting and "scope" not in setting, "the subscription's own setting"
    properties = environment.value(setting["properties"])
    assert properties == {"storageAccountId": ACCOUNT, "eventHubAuthorizationRuleId": None, "eventHubName": None,
                          "logs": [{"category": "Administrative", "enabled": True}]}
    (environment, setting), = _of(template, "Microsoft.Insights/diagnosticSettings", destination="eventHub", eventHubAuthorizationRuleId=RULE,
                                  storageAccountId=ACCOUNT)
    properties = environment.value(setting["properties"])
    assert (properties["storageAccountId"], properties["eventHubAuthorizationRuleId"], properties["eventHubName"]) == (None, RULE, "insights-activity-logs")
    assert template["parameters"]["destination"]["allowedValues"] == ["storage", "eventHub"]


def check_monitoring_reader(template: Json) -> None:
    """Monitoring Reader for the given principal on the subscription, only when given, named guid(subscription, role, principal)."""
    assert _of(template, "Microsoft.Authorization/roleAssignments", storageAccountId=ACCOUNT) == [], "no principal: no role"
    (environment, role), = _of(template, "Microsoft.Authorization/roleAssignments", storageAccountId=ACCOUNT, readerPrincipalId=PRINCIPAL)
    assert "scope" not in role, "at the deployment's scope: the subscription"
    guid = environment.value(role["properties"]["roleDefinitionId"]).rsplit("/", 1)[-1]
    assert ROLE_BY_GUID.get(guid) == "Monitoring Reader" and guid == BUILTIN_ROLES["Monitoring Reader"]
    assert environment.value(role["properties"]["principalId"]) == PRINCIPAL
    assert role["properties"]["principalType"] == "ServicePrincipal"
    assert "Monitoring Reader" in role["comments"]
    name = environment.value(role["name"])
    assert GUID.fullmatch(name)
    assert name == environment.value(f"[guid(subscription().id, '{guid}', '{PRINCIPAL}')]")
    assert name == _main_templates_reader_name(PRINCIPAL), "the same assignment as the main template's grantActivityLogReader: both may run"


def _main_templates_reader_name(principal: str) -> str:
    """The name infra/azuredeploy.json gives the Monitoring Reader assignment in SUBSCRIPTION, for this principal id."""
    main = _load(MAIN_PATH)
    instance = {"resourceId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso"}
    environment = _main(main, apimInstances=[instance], grantActivityLogReader=True)
    holder = next(resource for resource in main["resources"] if resource.get("copy", {}).get("name") == "activityLogReaders")
    inner = nested(environment.looping(None, 0).looping("activityLogReaders", 0), holder)
    assert inner.group == subscription_scope(SUBSCRIPTION)
    (role,) = inner.template["resources"]
    with_principal = Environment(inner.template, {"functionPrincipalId": principal}, inner.group)
    name: str = with_principal.value(role["name"])
    return name


CHECKS = [check_administrative_only, check_monitoring_reader]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_template_keeps_each_rule(template: Json, check: Callable[[Json], None]) -> None:
    check(template)


def _setting(template: Json) -> Json:
    found: Json = next(r for r in template["resources"] if r["type"] == "Microsoft.Insights/diagnosticSettings")
    return found


def _role(template: Json) -> Json:
    found: Json = next(r for r in template["resources"] if r["type"] == "Microsoft.Authorization/roleAssignments")
    return found




READER = "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]"
MUTATIONS: list[tuple[str, Callable[[Json], None], Callable[[Json], None]]] = [
    ("every category", edit(lambda t: _setting(t)["properties"], "logs", [{"categoryGroup": "allLogs", "enabled": True}]), check_administrative_only),
    ("Policy too", edit(lambda t: _setting(t)["properties"], "logs",
                         [{"category": "Administrative", "enabled": True}, {"category": "Policy", "enabled": True}]), check_administrative_only),
    ("both destinations", edit(lambda t: _setting(t)["properties"], "eventHubAuthorizationRuleId", "[parameters('eventHubAuthorizationRuleId')]"),
     check_administrative_only),
    ("the hub's name hard-coded", edit(lambda t: _setting(t)["properties"], "eventHubName", "[if(variables('toStorage'), null(), 'activity')]"),
     check_administrative_only),
    ("a role without a principal", edit(_role, "condition", ...), check_monitoring_reader),
    ("Reader instead", edit(lambda t: _role(t)["properties"], "roleDefinitionId", READER), check_monitoring_reader),
    ("named otherwise than the main template", edit(_role, "name",
        "[guid(subscription().id, parameters('readerPrincipalId'), '43d0d8ad-25c7-4714-9337-8ba259a9fe05')]"), check_monitoring_reader),
    ("the destinations swapped", _set("variables/toStorage", "[equals(parameters('destination'), 'eventHub')]"), check_administrative_only),
]


@pytest.mark.parametrize(("mutate", "check"), [pytest.param(m, c, id=name) for name, m, c in MUTATIONS])
def test_each_rule_catches_a_broken_copy(template: Json, mutate: Callable[[Json], None], check: Callable[[Json], None]) -> None:
    assert_mutation_caught(template, mutate, check)


def test_every_rule_has_a_mutation() -> None:
    assert {check for _, _, check in MUTATIONS} == set(CHECKS) == {v for k, v in globals().items() if k.startswith("check_")}

