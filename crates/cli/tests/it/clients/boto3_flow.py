"""Drives `agentry serve` with boto3 as a Step Functions user would. Prints one JSON line."""
import json
import sys
import time

import boto3
from botocore.config import Config

endpoint, access_key, secret_key = sys.argv[1:4]
sfn = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=access_key,
    aws_secret_access_key=secret_key,
    config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
)
out = {}
definition = {
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Pass", "Parameters": {"greeting.$": "States.Format('Hello, {}!', $.name)"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.greeting", "StringMatches": "Hello*", "Next": "Done"}], "Default": "Fail"},
        "Fail": {"Type": "Fail", "Error": "Unexpected"},
        "Done": {"Type": "Succeed"},
    },
}
arn = sfn.create_state_machine(name="greeter", definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/agentry")["stateMachineArn"]
ex = sfn.start_execution(stateMachineArn=arn, name="first", input=json.dumps({"name": "boto3"}))["executionArn"]
for _ in range(200):
    d = sfn.describe_execution(executionArn=ex)
    if d["status"] != "RUNNING":
        break
    time.sleep(0.05)
out["status"] = d["status"]
out["output"] = json.loads(d["output"])
out["history"] = [e["type"] for e in sfn.get_execution_history(executionArn=ex)["events"]]
out["listed"] = [e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
express = sfn.create_state_machine(name="quick", type="EXPRESS", definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/agentry")["stateMachineArn"]
sync = sfn.start_sync_execution(stateMachineArn=express, input=json.dumps({"name": "sync"}))
out["machines"] = sorted(m["name"] for m in sfn.list_state_machines()["stateMachines"])
out["sync"] = {"status": sync["status"], "output": json.loads(sync["output"]), "express": ":express:" in sync["executionArn"]}
errors = {}
try:
    sfn.start_sync_execution(stateMachineArn=arn, input="{}")
except sfn.exceptions.StateMachineTypeNotSupported:
    errors["sync on standard"] = "StateMachineTypeNotSupported"
try:
    sfn.describe_execution(executionArn=arn.replace(":stateMachine:", ":execution:") + ":missing")
except sfn.exceptions.ExecutionDoesNotExist:
    errors["missing execution"] = "ExecutionDoesNotExist"
try:
    sfn.create_state_machine(name="broken", definition='{"StartAt": "Nowhere", "States": {}}', roleArn="arn:aws:iam::000000000000:role/agentry")
except sfn.exceptions.InvalidDefinition as e:
    errors["bad definition"] = "InvalidDefinition"
try:
    sfn.start_execution(stateMachineArn=arn, name="first", input="{}")
except sfn.exceptions.ExecutionAlreadyExists:
    errors["name reused"] = "ExecutionAlreadyExists"
try:
    sfn.start_execution(stateMachineArn=arn, input="not json")
except sfn.exceptions.InvalidExecutionInput:
    errors["bad input"] = "InvalidExecutionInput"
wrong = boto3.client(
    "stepfunctions",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=access_key,
    aws_secret_access_key="not-the-secret",
    config=Config(retries={"max_attempts": 1}),
)
try:
    wrong.list_state_machines()
except wrong.exceptions.ClientError as e:
    errors["wrong secret"] = e.response["Error"]["Code"]
out["errors"] = errors
test = sfn.test_state(definition=json.dumps({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "Next": "N"}), roleArn="arn:aws:iam::000000000000:role/agentry", input='{"a": 1}')
out["test_state"] = {"status": test["status"], "output": json.loads(test["output"]), "nextState": test["nextState"]}
print(json.dumps(out))
