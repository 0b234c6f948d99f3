"""The baseline of benchmarks/remote.py: `aws s3 cp` reduced to boto3 (the library the AWS
CLI is built on) in a process of its own, so it pays start-up as `dvc push` does.
Usage: python s3_copy.py up|down LOCAL_FILE BUCKET KEY (endpoint in AWS_ENDPOINT_URL)."""

import os
import sys

import boto3

direction, local, bucket, key = sys.argv[1:5]
client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
if direction == "up":
    client.upload_file(local, bucket, key)
else:
    client.download_file(bucket, key, local)
