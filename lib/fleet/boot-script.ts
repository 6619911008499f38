/**
 * Renders what an instance of the checkout fleet runs at boot: the user data script, and
 * the files it writes (environment file, secrets script, systemd units, CloudWatch agent
 * configuration, logrotate rule). Pure functions of their settings, so tests can render
 * the same files the launch template carries and check them with shellcheck,
 * systemd-analyze and the real service bundle.
 *
 * Values may be CDK tokens (ARNs, host names, the region): they become CloudFormation
 * intrinsics in the user data and are resolved by CloudFormation before the instance
 * boots. No secret value is ever rendered: secrets are named by ARN and fetched by the
 * instance at service start.
 */

/** Where things live on an instance. */
export const FLEET_PATHS = {
  /** The unpacked service bundle (root-owned, read-only to the service). */
  app: '/opt/checkout/app',
  /** The downloaded bundle archive. */
  bundleArchive: '/opt/checkout/bundle.zip',
  /** Non-secret settings of the service (systemd EnvironmentFile). */
  environmentFile: '/etc/checkout/checkout.env',
  /** Secrets fetched at every service start (root-only, tmpfs, removed when the service stops). */
  secretsFile: '/run/checkout/secrets.env',
  /** Fetches the secrets; systemd runs it as root before each start. */
  secretsScript: '/usr/local/libexec/checkout-fetch-secrets',
  /** The RDS certificate bundle, where the fleet connects to the cluster directly (no proxy). */
  rdsCaBundle: '/etc/checkout/rds-ca-bundle.pem',
  /** The service's JSON log lines, embedded-metric lines included. */
  serviceLog: '/var/log/checkout/service.log',
  /** The sandbox fakes' output. */
  fakesLog: '/var/log/checkout/sandbox-fakes.log',
  /** A copy of this script's own output. */
  bootLog: '/var/log/checkout/boot.log',
  /** CloudWatch agent configuration. */
  agentConfig: '/opt/aws/amazon-cloudwatch-agent/etc/checkout.json',
  /** systemd units. */
  serviceUnit: '/etc/systemd/system/checkout.service',
  logrotate: '/etc/logrotate.d/checkout',
} as const;

/** The systemd unit names. */
export const FLEET_UNITS = {
  service: 'checkout.service',
  fakePayment: 'checkout-sandbox-payment-gateway.service',
  fakeRecommendations: 'checkout-sandbox-recommendations.service',
} as const;

/**
 * The Node.js binary the units run: the versioned executable of Amazon Linux 2023's
 * `nodejs22` package, which stays Node.js 22 whatever `alternatives` makes `node` point at.
 */
export const NODE_BINARY = '/usr/bin/node-22';

/** The packages the boot script installs from the distribution's repositories. */
export const FLEET_PACKAGES = ['nodejs22', 'amazon-cloudwatch-agent', 'unzip'] as const;

/** The RDS certificate bundle (every region's CAs), for connections that do not go through RDS Proxy. */
export const RDS_CA_BUNDLE_URL = 'https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem';

/** Ports of the sandbox fakes (127.0.0.1 only). */
export const SANDBOX_PORTS = { paymentGateway: 4001, recommendations: 4002 } as const;

/** One secret the service receives as an environment variable, fetched from Secrets Manager at start. */
export interface SecretVariable {
  /** The variable, e.g. `ADMIN_TOKEN`. */
  readonly name: string;
  /** The secret's ARN (a name works too); its SecretString is the value. */
  readonly secretArn: string;
}

/** What the boot script and its files need. */
export interface BootSettings {
  /** The region (also the region of every API call). */
  readonly region: string;
  /** The service's port. */
  readonly appPort: number;
  /** The bundle archive's S3 location. */
  readonly bundle: { readonly bucket: string; readonly key: string };
  /** The Auto Scaling group and its launch lifecycle hook, completed once the service is ready. */
  readonly autoScalingGroupName: string;
  readonly lifecycleHookName: string;
  /** The service's non-secret environment, in file order. */
  readonly environment: ReadonlyArray<readonly [string, string]>;
  /** Secrets the service receives as variables. */
  readonly secrets: readonly SecretVariable[];
  /** Run the bundled fakes as units of their own (not for production). */
  readonly sandbox: boolean;
  /** Log group of the service's logs (and the embedded metrics they carry). */
  readonly logGroupName: string;
  /** Namespace of the CloudWatch agent's host metrics (memory, disk). */
  readonly hostMetricsNamespace: string;
  /** Node.js flags of the service process (SERVICE_NODE_FLAGS). */
  readonly nodeFlags: readonly string[];
  /** systemd's TimeoutStopSec. */
  readonly stopTimeoutSeconds: number;
  /** Seconds after boot-script start at which it abandons the launch if the service is not ready. */
  readonly readyDeadlineSeconds: number;
  /** Download the RDS CA bundle and trust it (the fleet connects to the cluster, not to a proxy). */
  readonly trustRdsCa: boolean;
}

/** A value that can go into a systemd environment file or a single-quoted shell word. */
const PLAIN_VALUE = /^[^\s'"\\`$]*$/;
/** A CDK token as it appears in a string before synthesis. */
const TOKEN = /\$\{Token\[[^\]]+\]\}/g;

function assertPlain(what: string, value: string): void {
  if (!PLAIN_VALUE.test(value.replace(TOKEN, ''))) {
    throw new Error(
      `${what} "${value}" contains whitespace, a quote, a backslash or a $: it cannot be written into the instance's files`,
    );
  }
}

/** The service's environment file: `NAME=value` lines, no secret among them. */
export function renderEnvironmentFile(settings: Pick<BootSettings, 'environment' | 'secrets'>): string {
  const secretNames = new Set(settings.secrets.map((s) => s.name));
  const lines = settings.environment.map(([name, value]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name))
      throw new Error(`environment variable name "${name}" is not NAME_LIKE_THIS`);
    if (secretNames.has(name)) {
      throw new Error(`${name} is a secret: it is fetched at start, never written to the environment file`);
    }
    assertPlain(`environment value of ${name}`, value);
    return `${name}=${value}`;
  });
  return [
    '# The checkout service environment (non-secret). Secrets are fetched from Secrets',
    `# Manager at each start into ${FLEET_PATHS.secretsFile}.`,
    ...lines,
    '',
  ].join('\n');
}

/** The script systemd runs as root before each start: fetches the secrets into a root-only file. */
export function renderSecretsScript(settings: Pick<BootSettings, 'region' | 'secrets'>): string {
  for (const secret of settings.secrets) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(secret.name))
      throw new Error(`secret variable "${secret.name}" is not NAME_LIKE_THIS`);
    assertPlain(`secret ARN of ${secret.name}`, secret.secretArn);
  }
  assertPlain('region', settings.region);
  return [
    '#!/bin/bash',
    '# Fetches the checkout service secrets from Secrets Manager into a root-only file on',
    '# tmpfs; systemd reads it as an EnvironmentFile for the service that starts next.',
    'set -euo pipefail',
    'umask 077',
    `readonly REGION='${settings.region}'`,
    `readonly TARGET='${FLEET_PATHS.secretsFile}'`,
    'tmp="$(mktemp "${TARGET%/*}/.secrets.XXXXXX")"',
    'trap \'rm -f "$tmp"\' EXIT',
    '',
    'put() {',
    '  local value',
    '  value="$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$2" --query SecretString --output text)"',
    '  if [[ ! "$value" =~ ^[A-Za-z0-9._~+/=:@-]+$ ]]; then',
    '    echo "$1: the secret value is empty or has characters an environment file cannot carry" >&2',
    '    return 1',
    '  fi',
    '  printf \'%s=%s\\n\' "$1" "$value" >>"$tmp"',
    '}',
    '',
    ...settings.secrets.map((s) => `put ${s.name} '${s.secretArn}'`),
    'mv -f "$tmp" "$TARGET"',
    'trap - EXIT',
    '',
  ].join('\n');
}

/** Sandboxing every unit of the fleet shares (no MemoryDenyWriteExecute: V8's JIT writes code). */
const HARDENING = [
  'NoNewPrivileges=yes',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'RestrictSUIDSGID=yes',
  'RestrictRealtime=yes',
  'RestrictNamespaces=yes',
  'LockPersonality=yes',
  'CapabilityBoundingSet=',
  'SystemCallArchitectures=native',
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
];

/** The checkout service's unit. */
export function renderServiceUnit(
  settings: Pick<BootSettings, 'nodeFlags' | 'stopTimeoutSeconds' | 'sandbox'>,
): string {
  const fakes = settings.sandbox ? [FLEET_UNITS.fakePayment, FLEET_UNITS.fakeRecommendations] : [];
  settings.nodeFlags.forEach((flag) => assertPlain('node flag', flag));
  return [
    '[Unit]',
    'Description=resilient-shop checkout service',
    `Wants=network-online.target${fakes.map((f) => ` ${f}`).join('')}`,
    `After=network-online.target${fakes.map((f) => ` ${f}`).join('')}`,
    // Never give up restarting: the load balancer's health check and Auto Scaling decide
    // when an instance is beyond repair, and replace it.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=exec',
    'User=checkout',
    'Group=checkout',
    'WorkingDirectory=/opt/checkout/app',
    'RuntimeDirectory=checkout',
    'RuntimeDirectoryMode=0700',
    `EnvironmentFile=${FLEET_PATHS.environmentFile}`,
    `EnvironmentFile=-${FLEET_PATHS.secretsFile}`,
    // "+": runs as root, outside the sandbox; the file it writes is read before ExecStart.
    `ExecStartPre=+${FLEET_PATHS.secretsScript}`,
    `ExecStart=${NODE_BINARY} ${[...settings.nodeFlags, '--enable-source-maps'].join(' ')} ${FLEET_PATHS.app}/service.js`,
    'Restart=on-failure',
    'RestartSec=5',
    // 78 (EX_CONFIG): a bad environment; restarting cannot fix it.
    'RestartPreventExitStatus=78',
    // SIGTERM to the main process only: the node:cluster primary forwards it to its workers
    // once (service/cluster.ts). A second SIGTERM straight from systemd would find a worker
    // whose handler already ran (process.once) and kill it mid-drain. SIGKILL reaches every
    // process, and only after the stop timeout, which is above the shutdown budget.
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${settings.stopTimeoutSeconds}`,
    'LimitNOFILE=65536',
    `StandardOutput=append:${FLEET_PATHS.serviceLog}`,
    `StandardError=append:${FLEET_PATHS.serviceLog}`,
    ...HARDENING,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** A sandbox fake's unit: clearly named and described as not for production. */
export function renderFakeUnit(fake: 'payment-gateway' | 'recommendations', port: number): string {
  return [
    '[Unit]',
    `Description=SANDBOX ONLY, NOT FOR PRODUCTION: fake ${fake} for the checkout service (127.0.0.1:${port})`,
    'After=network-online.target',
    'Wants=network-online.target',
    `Before=${FLEET_UNITS.service}`,
    '',
    '[Service]',
    'Type=exec',
    'DynamicUser=yes',
    `Environment=FAKE=${fake}`,
    `Environment=PORT=${port}`,
    `ExecStart=${NODE_BINARY} --enable-source-maps ${FLEET_PATHS.app}/fakes.js`,
    'Restart=always',
    'RestartSec=2',
    `StandardOutput=append:${FLEET_PATHS.fakesLog}`,
    `StandardError=append:${FLEET_PATHS.fakesLog}`,
    ...HARDENING,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * The CloudWatch agent's configuration: the service's log file (JSON lines; CloudWatch
 * Logs turns its embedded-metric lines into the `ResilientShop/Checkout` metrics), the
 * fakes' log in sandbox mode, the boot log; and memory and root-disk use of the host.
 */
export function renderAgentConfig(
  settings: Pick<BootSettings, 'logGroupName' | 'hostMetricsNamespace' | 'sandbox'>,
): string {
  const file = (path: string, stream: string) => ({
    file_path: path,
    log_group_name: settings.logGroupName,
    log_stream_name: `{instance_id}/${stream}`,
    timezone: 'UTC',
  });
  const config = {
    agent: { metrics_collection_interval: 60, run_as_user: 'cwagent' },
    logs: {
      logs_collected: {
        files: {
          collect_list: [
            file(FLEET_PATHS.serviceLog, 'service'),
            ...(settings.sandbox ? [file(FLEET_PATHS.fakesLog, 'sandbox-fakes')] : []),
            file(FLEET_PATHS.bootLog, 'boot'),
          ],
        },
      },
    },
    metrics: {
      namespace: settings.hostMetricsNamespace,
      append_dimensions: { InstanceId: '${aws:InstanceId}' },
      aggregation_dimensions: [[]],
      metrics_collected: {
        mem: { measurement: ['mem_used_percent'] },
        disk: { measurement: ['used_percent'], resources: ['/'] },
      },
    },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Rotation of the service's log files; the agent follows a rotated file by its name. */
export function renderLogrotate(): string {
  return [
    '/var/log/checkout/*.log {',
    '  daily',
    '  maxsize 100M',
    '  rotate 5',
    '  compress',
    '  delaycompress',
    '  missingok',
    '  notifempty',
    // systemd keeps the file open (StandardOutput=append:), so rotate by copying.
    '  copytruncate',
    '  create 0644 root root',
    '}',
    '',
  ].join('\n');
}

const EOF_MARKER = 'CHECKOUT_FILE_EOF';

/** Shell lines writing one file with a quoted heredoc (nothing in it is expanded). */
function writeFile(path: string, mode: string, content: string): string[] {
  if (content.split('\n').includes(EOF_MARKER)) throw new Error(`${path} contains the line ${EOF_MARKER}`);
  return [
    `cat >'${path}' <<'${EOF_MARKER}'`,
    content.replace(/\n$/, ''),
    EOF_MARKER,
    `chmod ${mode} '${path}'`,
  ];
}

/**
 * The user data: installs Node.js 22 and the CloudWatch agent from the distribution,
 * fetches the bundle, writes the files above, starts the agent (and the fakes in sandbox
 * mode) and the service, waits for `/health/ready`, and completes the launch lifecycle
 * action with CONTINUE; any failure completes it with ABANDON, and Auto Scaling replaces
 * the instance.
 */
export function renderBootScript(settings: BootSettings): string {
  for (const [what, value] of [
    ['region', settings.region],
    ['bundle bucket', settings.bundle.bucket],
    ['bundle key', settings.bundle.key],
    ['Auto Scaling group name', settings.autoScalingGroupName],
    ['lifecycle hook name', settings.lifecycleHookName],
  ] as const) {
    assertPlain(what, value);
  }
  const unitsToStart = settings.sandbox ? [FLEET_UNITS.fakePayment, FLEET_UNITS.fakeRecommendations] : [];
  const lines = [
    '#!/bin/bash',
    '# resilient-shop checkout fleet: boot script (EC2 user data). See docs/fleet.md.',
    'set -Eeuo pipefail',
    'install -d -m 0755 /var/log/checkout',
    `exec > >(tee -a '${FLEET_PATHS.bootLog}') 2>&1`,
    '',
    `readonly REGION='${settings.region}'`,
    `readonly ASG_NAME='${settings.autoScalingGroupName}'`,
    `readonly HOOK_NAME='${settings.lifecycleHookName}'`,
    `readonly BUNDLE_URI='s3://${settings.bundle.bucket}/${settings.bundle.key}'`,
    `readonly READY_URL='http://127.0.0.1:${settings.appPort}/health/ready'`,
    `readonly READY_DEADLINE_SECONDS=${settings.readyDeadlineSeconds}`,
    '',
    'imds() {',
    '  local token',
    '  token="$(curl -fsS -X PUT -H \'X-aws-ec2-metadata-token-ttl-seconds: 60\' http://169.254.169.254/latest/api/token)"',
    '  curl -fsS -H "X-aws-ec2-metadata-token: ${token}" "http://169.254.169.254/latest/meta-data/$1"',
    '}',
    'INSTANCE_ID="$(imds instance-id)"',
    'readonly INSTANCE_ID',
    '',
    'complete_launch() {',
    '  aws autoscaling complete-lifecycle-action --region "$REGION" --auto-scaling-group-name "$ASG_NAME" \\',
    '    --lifecycle-hook-name "$HOOK_NAME" --instance-id "$INSTANCE_ID" --lifecycle-action-result "$1"',
    '}',
    'abandon() {',
    '  echo "boot failed at line $1: abandoning the launch; Auto Scaling replaces this instance" >&2',
    '  complete_launch ABANDON || true',
    '  exit 1',
    '}',
    "trap 'abandon $LINENO' ERR",
    '',
    'retry() {',
    '  local attempt',
    '  for attempt in 1 2 3 4 5; do',
    '    "$@" && return 0',
    '    echo "attempt ${attempt} of \'$*\' failed" >&2',
    '    sleep $((attempt * 5))',
    '  done',
    '  return 1',
    '}',
    '',
    `retry dnf install -y --setopt=install_weak_deps=False ${FLEET_PACKAGES.join(' ')}`,
    'id checkout >/dev/null 2>&1 || useradd --system --user-group --home-dir /opt/checkout --shell /sbin/nologin checkout',
    'install -d -m 0755 /opt/checkout /etc/checkout /usr/local/libexec',
    `retry aws s3 cp --region "$REGION" --only-show-errors "$BUNDLE_URI" '${FLEET_PATHS.bundleArchive}'`,
    `rm -rf '${FLEET_PATHS.app}'`,
    `install -d -m 0755 '${FLEET_PATHS.app}'`,
    `unzip -q '${FLEET_PATHS.bundleArchive}' -d '${FLEET_PATHS.app}'`,
    `chown -R root:root '${FLEET_PATHS.app}'`,
    `chmod -R u=rwX,go=rX '${FLEET_PATHS.app}'`,
    ...(settings.trustRdsCa
      ? [`retry curl -fsS --proto '=https' -o '${FLEET_PATHS.rdsCaBundle}' '${RDS_CA_BUNDLE_URL}'`]
      : []),
    '',
    ...writeFile(FLEET_PATHS.environmentFile, '0644', renderEnvironmentFile(settings)),
    ...writeFile(FLEET_PATHS.secretsScript, '0700', renderSecretsScript(settings)),
    ...writeFile(FLEET_PATHS.serviceUnit, '0644', renderServiceUnit(settings)),
    ...(settings.sandbox
      ? [
          ...writeFile(
            `/etc/systemd/system/${FLEET_UNITS.fakePayment}`,
            '0644',
            renderFakeUnit('payment-gateway', SANDBOX_PORTS.paymentGateway),
          ),
          ...writeFile(
            `/etc/systemd/system/${FLEET_UNITS.fakeRecommendations}`,
            '0644',
            renderFakeUnit('recommendations', SANDBOX_PORTS.recommendations),
          ),
        ]
      : []),
    ...writeFile(FLEET_PATHS.agentConfig, '0644', renderAgentConfig(settings)),
    ...writeFile(FLEET_PATHS.logrotate, '0644', renderLogrotate()),
    '',
    'systemctl daemon-reload',
    '/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\',
    `  -c 'file:${FLEET_PATHS.agentConfig}'`,
    ...(unitsToStart.length > 0 ? [`systemctl enable --now ${unitsToStart.join(' ')}`] : []),
    `systemctl enable --now ${FLEET_UNITS.service}`,
    '',
    'until curl -fsS -o /dev/null --max-time 2 "$READY_URL"; do',
    '  if ((SECONDS >= READY_DEADLINE_SECONDS)); then',
    '    echo "the service was not ready ${READY_DEADLINE_SECONDS} s after boot; see journalctl -u checkout" >&2',
    '    complete_launch ABANDON || true',
    '    exit 1',
    '  fi',
    '  sleep 2',
    'done',
    'complete_launch CONTINUE',
    'echo "checkout service ready; launch completed"',
    '',
  ];
  return lines.join('\n');
}

/**
 * The content of a file the boot script writes, read back from a rendered script (with or
 * without its tokens resolved): what the instance will have at `path`.
 */
export function fileWrittenBy(script: string, path: string): string | undefined {
  const start = `cat >'${path}' <<'${EOF_MARKER}'\n`;
  const at = script.indexOf(start);
  if (at < 0) return undefined;
  const body = script.slice(at + start.length);
  const end = body.indexOf(`\n${EOF_MARKER}\n`);
  return end < 0 ? undefined : `${body.slice(0, end)}\n`;
}
