// The full retrieval flow through the AWS SDK for JavaScript v3 (@aws-sdk/client-glacier)
// against a live OpenGlacier server; driven by tests/functional/test_jobs_js.py.
//
// Settings come from OG_* environment variables, or from --name=value arguments
// (--endpoint, --access-key, --secret-key, --region, --vault, --admin-token,
// --archive-file, --output-file). Prints one JSON summary on stdout; the Python
// test asserts on it. Exits non-zero, with the error on stderr, on any failure.

import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";

import {
  CreateVaultCommand,
  DeleteVaultNotificationsCommand,
  DescribeJobCommand,
  GetJobOutputCommand,
  GetVaultNotificationsCommand,
  GlacierClient,
  InitiateJobCommand,
  ListJobsCommand,
  SetVaultNotificationsCommand,
  UploadArchiveCommand,
} from "@aws-sdk/client-glacier";

const OPTIONS = {
  endpoint: "OG_ENDPOINT",
  "access-key": "OG_ACCESS_KEY",
  "secret-key": "OG_SECRET_KEY",
  region: "OG_REGION",
  vault: "OG_VAULT",
  "admin-token": "OG_ADMIN_TOKEN",
  "archive-file": "OG_ARCHIVE_FILE",
  "output-file": "OG_OUTPUT_FILE",
};

function settings() {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: "string" }])),
  });
  const out = {};
  for (const [name, env] of Object.entries(OPTIONS)) {
    const value = values[name] ?? process.env[env];
    if (!value) throw new Error(`missing --${name} (or ${env})`);
    out[name] = value;
  }
  return out;
}

// Which hash headers the SDK put on each request, as sent (after its own middleware).
function recordHashHeaders(client, seen) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const headers = args.request.headers ?? {};
      seen[context.commandName] = {
        contentSha256: "x-amz-content-sha256" in headers,
        treeHash: "x-amz-sha256-tree-hash" in headers,
      };
      return next(args);
    },
    { step: "finalizeRequest", name: "recordHashHeaders", priority: "low" },
  );
}

async function runJobs(cfg) {
  const resp = await fetch(`${cfg.endpoint}/_admin/jobs/run`, {
    method: "POST",
    headers: { Authorization: `Bearer ${cfg["admin-token"]}` },
  });
  if (resp.status !== 200) throw new Error(`admin /jobs/run: ${resp.status} ${await resp.text()}`);
  return (await resp.json()).completed;
}

async function readOutput(client, vault, jobId, range) {
  const out = await client.send(new GetJobOutputCommand({ vaultName: vault, jobId, range }));
  const bytes = Buffer.from(await out.body.transformToByteArray());
  const { body, $metadata, ...fields } = out;
  return { bytes, fields };
}

async function errorName(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
}

async function main() {
  const cfg = settings();
  const vault = cfg.vault;
  const client = new GlacierClient({
    endpoint: cfg.endpoint,
    region: cfg.region,
    credentials: { accessKeyId: cfg["access-key"], secretAccessKey: cfg["secret-key"] },
    maxAttempts: 1,
  });
  const sentHeaders = {};
  recordHashHeaders(client, sentHeaders);
  const summary = { sentHeaders };

  // No accountId anywhere: the SDK's Glacier middleware fills in "-".
  summary.createVault = (await client.send(new CreateVaultCommand({ vaultName: vault }))).location;

  const data = await readFile(cfg["archive-file"]);
  const upload = await client.send(
    new UploadArchiveCommand({ vaultName: vault, archiveDescription: "from js", body: data }),
  );
  summary.upload = { archiveId: upload.archiveId, checksum: upload.checksum };

  const initiated = await client.send(
    new InitiateJobCommand({
      vaultName: vault,
      jobParameters: {
        Type: "archive-retrieval",
        ArchiveId: upload.archiveId,
        Description: "js retrieval",
        Tier: "Expedited",
      },
    }),
  );
  summary.initiateJob = { jobId: initiated.jobId, location: initiated.location };
  summary.ranJobs = await runJobs(cfg);

  const described = await client.send(
    new DescribeJobCommand({ vaultName: vault, jobId: initiated.jobId }),
  );
  delete described.$metadata;
  summary.describeJob = described;

  const whole = await readOutput(client, vault, initiated.jobId);
  await writeFile(cfg["output-file"], whole.bytes);
  summary.output = {
    ...whole.fields,
    length: whole.bytes.length,
    bytesEqual: whole.bytes.equals(data),
    checksumEqualsUpload: whole.fields.checksum === upload.checksum,
  };

  const MIB = 1024 * 1024;
  const ranged = await readOutput(client, vault, initiated.jobId, `bytes=${MIB}-${2 * MIB - 1}`);
  summary.rangedOutput = {
    ...ranged.fields,
    length: ranged.bytes.length,
    bytesEqual: ranged.bytes.equals(data.subarray(MIB, 2 * MIB)),
  };

  const listed = await client.send(new ListJobsCommand({ vaultName: vault, completed: "true" }));
  summary.listJobs = {
    jobIds: listed.JobList.map((j) => j.JobId),
    statusCodes: listed.JobList.map((j) => j.StatusCode),
    marker: listed.Marker ?? null,
  };

  const inventoryJob = await client.send(
    new InitiateJobCommand({
      vaultName: vault,
      jobParameters: { Type: "inventory-retrieval", Format: "JSON" },
    }),
  );
  summary.ranInventory = await runJobs(cfg);
  const inventoryDescribed = await client.send(
    new DescribeJobCommand({ vaultName: vault, jobId: inventoryJob.jobId }),
  );
  const inventory = await readOutput(client, vault, inventoryJob.jobId);
  summary.inventory = {
    jobId: inventoryJob.jobId,
    action: inventoryDescribed.Action,
    statusCode: inventoryDescribed.StatusCode,
    inventorySizeInBytes: inventoryDescribed.InventorySizeInBytes,
    contentType: inventory.fields.contentType,
    checksum: inventory.fields.checksum ?? null,
    length: inventory.bytes.length,
    document: JSON.parse(inventory.bytes.toString("utf8")),
  };

  const config = {
    SNSTopic: "arn:aws:sns:us-east-1:123456789012:js-topic",
    Events: ["ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"],
  };
  await client.send(
    new SetVaultNotificationsCommand({ vaultName: vault, vaultNotificationConfig: config }),
  );
  summary.notifications = (
    await client.send(new GetVaultNotificationsCommand({ vaultName: vault }))
  ).vaultNotificationConfig;
  await client.send(new DeleteVaultNotificationsCommand({ vaultName: vault }));
  summary.notificationsAfterDelete = await errorName(
    client.send(new GetVaultNotificationsCommand({ vaultName: vault })),
  );

  summary.unknownJob = await errorName(
    client.send(new DescribeJobCommand({ vaultName: vault, jobId: "J".repeat(92) })),
  );
  summary.badStatusCode = await errorName(
    client.send(new ListJobsCommand({ vaultName: vault, statuscode: "Done" })),
  );

  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.name ?? "Error"}: ${err.message}\n${err.stack ?? ""}\n`);
  if (err.$metadata) process.stderr.write(`${JSON.stringify(err.$metadata)}\n`);
  process.exit(1);
});
