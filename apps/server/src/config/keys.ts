/**
 * Every configuration key the server accepts, as YAML key (camelCase, at CODEQ_CONFIG_PATH) and
 * as environment variable (upstream's names). Deployment artefacts (Helm chart, compose files) are
 * checked against this list by a test, so a typo in a chart fails CI instead of being ignored.
 */
export const CONFIG_KEYS = [
  { yaml: 'port', env: 'PORT' },
  { yaml: 'host', env: 'HOST' },
  { yaml: 'env', env: 'ENV' },
  { yaml: 'timezone', env: 'TIMEZONE' },
  { yaml: 'logLevel', env: 'LOG_LEVEL' },
  { yaml: 'logFormat', env: 'LOG_FORMAT' },
  { yaml: 'persistenceProvider', env: 'PERSISTENCE_PROVIDER' },
  { yaml: 'persistenceConfig', env: 'PERSISTENCE_CONFIG' },
  { yaml: 'producerAuthProvider', env: 'PRODUCER_AUTH_PROVIDER' },
  { yaml: 'producerAuthConfig', env: 'PRODUCER_AUTH_CONFIG' },
  { yaml: 'workerAuthProvider', env: 'WORKER_AUTH_PROVIDER' },
  { yaml: 'workerAuthConfig', env: 'WORKER_AUTH_CONFIG' },
  { yaml: 'allowProducerAsWorker', env: 'ALLOW_PRODUCER_AS_WORKER' },
  { yaml: 'identityJwksUrl', env: 'IDENTITY_JWKS_URL' },
  { yaml: 'identityIssuer', env: 'IDENTITY_ISSUER' },
  { yaml: 'identityAudience', env: 'IDENTITY_AUDIENCE' },
  { yaml: 'workerJwksUrl', env: 'WORKER_JWKS_URL' },
  { yaml: 'workerIssuer', env: 'WORKER_ISSUER' },
  { yaml: 'workerAudience', env: 'WORKER_AUDIENCE' },
  { yaml: 'allowedClockSkewSeconds', env: 'ALLOWED_CLOCK_SKEW_SECONDS' },
  { yaml: 'rateLimit', env: 'CODEQ_RATE_LIMIT' },
  { yaml: 'workerStreamAddr', env: 'WORKER_STREAM_ADDR' },
  { yaml: 'producerStreamAddr', env: 'PRODUCER_STREAM_ADDR' },
  { yaml: 'localArtifactsDir', env: 'LOCAL_ARTIFACTS_DIR' },
  { yaml: 'defaultLeaseSeconds', env: 'DEFAULT_LEASE_SECONDS' },
  { yaml: 'requeueInspectLimit', env: 'REQUEUE_INSPECT_LIMIT' },
  { yaml: 'maxAttemptsDefault', env: 'MAX_ATTEMPTS_DEFAULT' },
  { yaml: 'backoffPolicy', env: 'BACKOFF_POLICY' },
  { yaml: 'backoffBaseSeconds', env: 'BACKOFF_BASE_SECONDS' },
  { yaml: 'backoffMaxSeconds', env: 'BACKOFF_MAX_SECONDS' },
  { yaml: 'webhookHmacSecret', env: 'WEBHOOK_HMAC_SECRET' },
  { yaml: 'resultWebhookMaxAttempts', env: 'RESULT_WEBHOOK_MAX_ATTEMPTS' },
  { yaml: 'resultWebhookBaseBackoffSeconds', env: 'RESULT_WEBHOOK_BASE_BACKOFF_SECONDS' },
  { yaml: 'resultWebhookMaxBackoffSeconds', env: 'RESULT_WEBHOOK_MAX_BACKOFF_SECONDS' },
  { yaml: 'webhookTimeoutMs', env: 'CODEQ_WEBHOOK_TIMEOUT_MS' },
  { yaml: 'webhookOutboxMaxRows', env: 'CODEQ_WEBHOOK_OUTBOX_MAX_ROWS' },
  { yaml: 'webhookOutboxPollMs', env: 'CODEQ_WEBHOOK_OUTBOX_POLL_MS' },
  { yaml: 'webhookMaxAgeSeconds', env: 'CODEQ_WEBHOOK_MAX_AGE_SECONDS' },
  { yaml: 'subscriptionCleanupIntervalSeconds', env: 'SUBSCRIPTION_CLEANUP_INTERVAL_SECONDS' },
  { yaml: 'subscriptionMinIntervalSeconds', env: 'SUBSCRIPTION_MIN_INTERVAL_SECONDS' },
  { yaml: 'retentionSeconds', env: 'CODEQ_RETENTION_SECONDS' },
  { yaml: 'maxBodyBytes', env: 'CODEQ_MAX_BODY_BYTES' },
  { yaml: 'shutdownGraceSeconds', env: 'CODEQ_SHUTDOWN_GRACE_SECONDS' },
  { yaml: 'metricsToken', env: 'CODEQ_METRICS_TOKEN' },
  { yaml: 'metricsMaxCommands', env: 'CODEQ_METRICS_MAX_COMMANDS' },
  { yaml: 'webhookAllowPrivate', env: 'CODEQ_WEBHOOK_ALLOW_PRIVATE' },
  { yaml: 'dashboardDir', env: 'CODEQ_DASHBOARD_DIR' },
] as const;

export type YamlKey = (typeof CONFIG_KEYS)[number]['yaml'];
export const ENV_VARS: readonly string[] = [...CONFIG_KEYS.map((k) => k.env), 'CODEQ_CONFIG_PATH'];
export const YAML_KEYS: readonly string[] = CONFIG_KEYS.map((k) => k.yaml);
