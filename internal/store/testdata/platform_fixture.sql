-- Stand-in for the platform's own Flyway migrations (platform_common, V1016
-- admin, V2007 tenant_template), written the way the platform writes them:
-- plain CREATE statements, its own index and trigger names, extra indexes and
-- comments. Tests load it, then check that Migrate leaves all of it unchanged.

CREATE SCHEMA platform_common;
CREATE SCHEMA admin;
CREATE SCHEMA tenant_template;

CREATE TYPE platform_common.event_status AS ENUM (
    'pending', 'processing', 'completed', 'failed', 'retrying', 'cancelled', 'paused', 'blocked');
CREATE TYPE platform_common.event_priority AS ENUM ('low', 'normal', 'high', 'very_high', 'critical');
CREATE TYPE platform_common.action_type AS ENUM (
    'email', 'sms', 'push_notification', 'webhook', 'system_notification',
    'slack_notification', 'teams_notification', 'function_execution', 'script_execution',
    'workflow_trigger', 'lambda_function', 'background_job', 'database_operation',
    'file_operation', 'storage_operation', 'backup_operation', 'data_sync',
    'cache_invalidation', 'cache_warming', 'index_rebuild', 'external_api',
    'payment_processing', 'analytics_tracking', 'crm_sync', 'erp_sync', 'security_scan',
    'compliance_check', 'audit_log', 'access_review', 'deployment_trigger',
    'scaling_operation', 'monitoring_alert', 'health_check', 'report_generation',
    'batch_processing', 'data_pipeline', 'custom');
CREATE TYPE platform_common.action_status AS ENUM (
    'pending', 'running', 'completed', 'failed', 'retrying', 'cancelled', 'timeout',
    'skipped', 'paused', 'blocked');

CREATE OR REPLACE FUNCTION platform_common.uuid_generate_v7()
RETURNS UUID AS $$
DECLARE
    unix_ts_ms BYTEA;
    uuid_bytes BYTEA;
BEGIN
    unix_ts_ms := substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT) FROM 3);
    uuid_bytes := unix_ts_ms || substring(uuid_send(gen_random_uuid()) FROM 7);
    uuid_bytes := set_byte(uuid_bytes, 6, (b'0111' || get_byte(uuid_bytes, 6)::BIT(4))::BIT(8)::INT);
    RETURN encode(uuid_bytes, 'hex')::UUID;
END
$$ LANGUAGE plpgsql VOLATILE;

CREATE OR REPLACE FUNCTION platform_common.update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

COMMENT ON FUNCTION platform_common.uuid_generate_v7() IS 'Time-ordered UUIDs (RFC 9562 version 7)';

-- V1016: admin events and actions (fixture)

CREATE TABLE admin.events (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    event_type varchar(255) NOT NULL,
    aggregate_id uuid NOT NULL,
    aggregate_type varchar(100) NOT NULL,
    event_version integer DEFAULT 1,
    correlation_id uuid,
    causation_id uuid,
    event_data jsonb NOT NULL DEFAULT '{}',
    event_metadata jsonb DEFAULT '{}',
    status platform_common.event_status DEFAULT 'pending',
    priority platform_common.event_priority DEFAULT 'normal',
    scheduled_at timestamptz DEFAULT now(),
    processing_started_at timestamptz,
    processing_completed_at timestamptz,
    processing_duration_ms integer,
    retry_count integer DEFAULT 0,
    max_retries integer DEFAULT 3,
    error_message text,
    error_details jsonb DEFAULT '{}',
    tenant_id uuid,
    organization_id uuid,
    user_id uuid,
    source_service varchar(100),
    source_version varchar(50),
    queue_name varchar(100),
    message_id varchar(100),
    partition_key varchar(100),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_retry_count CHECK (retry_count >= 0 AND retry_count <= max_retries),
    CONSTRAINT valid_processing_duration CHECK (processing_duration_ms >= 0),
    CONSTRAINT valid_event_type_format CHECK (event_type ~* '^[a-z_]+\.[a-z_]+$')
);
CREATE INDEX idx_events_status_priority ON admin.events (status, priority);
CREATE INDEX idx_events_pending_scheduled_at ON admin.events (scheduled_at) WHERE status = 'pending';
CREATE INDEX idx_events_event_type ON admin.events (event_type);
CREATE INDEX idx_events_created_at ON admin.events (created_at);
CREATE TRIGGER trigger_events_updated_at BEFORE UPDATE ON admin.events
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE admin.actions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    name varchar(255) NOT NULL UNIQUE,
    action_type platform_common.action_type NOT NULL,
    handler_class varchar(500) NOT NULL,
    config jsonb DEFAULT '{}',
    event_patterns text[] NOT NULL,
    conditions jsonb DEFAULT '{}',
    is_active boolean DEFAULT true,
    priority platform_common.event_priority DEFAULT 'normal',
    timeout_seconds integer DEFAULT 300,
    retry_policy jsonb DEFAULT '{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 1000}',
    max_concurrent_executions integer DEFAULT 1,
    rate_limit_per_minute integer,
    is_healthy boolean DEFAULT true,
    last_health_check_at timestamptz,
    health_check_error text,
    total_executions bigint DEFAULT 0,
    successful_executions bigint DEFAULT 0,
    failed_executions bigint DEFAULT 0,
    avg_execution_time_ms integer DEFAULT 0,
    description text,
    tags varchar(50)[],
    owner_team varchar(100),
    metadata jsonb DEFAULT '{}',
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_timeout CHECK (timeout_seconds > 0),
    CONSTRAINT valid_concurrent_executions CHECK (max_concurrent_executions > 0),
    CONSTRAINT valid_rate_limit CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
    CONSTRAINT valid_statistics CHECK (
        total_executions >= 0 AND successful_executions >= 0 AND failed_executions >= 0
        AND successful_executions + failed_executions <= total_executions)
);
CREATE INDEX idx_actions_is_active ON admin.actions (is_active);
CREATE INDEX idx_actions_event_patterns ON admin.actions USING gin (event_patterns);
CREATE INDEX idx_actions_action_type ON admin.actions (action_type);
CREATE TRIGGER trigger_actions_updated_at BEFORE UPDATE ON admin.actions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE admin.action_executions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    event_id uuid NOT NULL REFERENCES admin.events (id) ON DELETE CASCADE,
    action_id uuid NOT NULL REFERENCES admin.actions (id) ON DELETE CASCADE,
    execution_context jsonb DEFAULT '{}',
    input_data jsonb DEFAULT '{}',
    output_data jsonb DEFAULT '{}',
    status platform_common.action_status DEFAULT 'pending',
    queued_at timestamptz DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    execution_duration_ms integer,
    attempt_number integer DEFAULT 1,
    is_retry boolean DEFAULT false,
    parent_execution_id uuid REFERENCES admin.action_executions (id),
    error_message text,
    error_details jsonb DEFAULT '{}',
    error_stack_trace text,
    queue_message_id varchar(100),
    worker_id varchar(100),
    memory_usage_mb integer,
    cpu_time_ms integer,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    CONSTRAINT valid_attempt_number CHECK (attempt_number > 0),
    CONSTRAINT valid_execution_duration CHECK (execution_duration_ms >= 0),
    CONSTRAINT valid_timing CHECK (
        (started_at IS NULL OR started_at >= queued_at)
        AND (completed_at IS NULL OR completed_at >= started_at))
);
CREATE INDEX idx_action_executions_event_id ON admin.action_executions (event_id);
CREATE INDEX idx_action_executions_action_id ON admin.action_executions (action_id);
CREATE INDEX idx_action_executions_status ON admin.action_executions (status);
CREATE TRIGGER trigger_action_executions_updated_at BEFORE UPDATE ON admin.action_executions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE admin.event_subscriptions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    action_id uuid NOT NULL REFERENCES admin.actions (id) ON DELETE CASCADE,
    event_pattern varchar(255) NOT NULL,
    conditions jsonb DEFAULT '{}',
    is_active boolean DEFAULT true,
    priority integer DEFAULT 0,
    tenant_filter uuid[],
    organization_filter uuid[],
    source_service_filter varchar(100)[],
    rate_limit_per_minute integer,
    rate_limit_per_hour integer,
    rate_limit_window_start timestamptz,
    current_rate_count integer DEFAULT 0,
    name varchar(255),
    description text,
    created_by uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_priority CHECK (priority >= 0),
    CONSTRAINT valid_rate_limits CHECK (
        (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0)
        AND (rate_limit_per_hour IS NULL OR rate_limit_per_hour > 0)),
    CONSTRAINT unique_action_pattern UNIQUE (action_id, event_pattern, deleted_at)
);
CREATE INDEX idx_event_subscriptions_is_active ON admin.event_subscriptions (is_active);
CREATE INDEX idx_event_subscriptions_event_pattern ON admin.event_subscriptions (event_pattern);
CREATE TRIGGER trigger_event_subscriptions_updated_at BEFORE UPDATE ON admin.event_subscriptions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE admin.queue_metrics (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    queue_name varchar(100) NOT NULL,
    metrics_timestamp timestamptz DEFAULT now(),
    pending_messages integer DEFAULT 0,
    processing_messages integer DEFAULT 0,
    completed_messages integer DEFAULT 0,
    failed_messages integer DEFAULT 0,
    avg_processing_time_ms numeric(10,2),
    throughput_per_minute integer,
    error_rate_percentage numeric(5,2),
    memory_usage_mb integer,
    cpu_usage_percentage numeric(5,2),
    active_workers integer,
    is_healthy boolean DEFAULT true,
    last_message_processed_at timestamptz,
    metadata jsonb DEFAULT '{}',
    CONSTRAINT valid_percentages CHECK (
        (error_rate_percentage IS NULL OR error_rate_percentage BETWEEN 0 AND 100)
        AND (cpu_usage_percentage IS NULL OR cpu_usage_percentage BETWEEN 0 AND 100))
);
CREATE INDEX idx_queue_metrics_queue_name ON admin.queue_metrics (queue_name);
CREATE INDEX idx_queue_metrics_metrics_timestamp ON admin.queue_metrics (metrics_timestamp);

-- Extra platform indexes our migrations must leave alone.
CREATE INDEX idx_events_tenant_id ON admin.events(tenant_id) WHERE tenant_id IS NOT NULL;
CREATE INDEX idx_events_aggregate ON admin.events(aggregate_type, aggregate_id);

COMMENT ON SCHEMA admin IS 'Admin schema containing platform-wide event and action management';
COMMENT ON TABLE admin.events IS 'Event sourcing table storing all platform events';
COMMENT ON TABLE admin.actions IS 'Action definitions that can be triggered by events';
COMMENT ON COLUMN admin.events.causation_id IS 'The event that caused this event (causality chain)';

-- V2007: tenant_template events and actions (fixture)

CREATE TABLE tenant_template.events (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    event_type varchar(255) NOT NULL,
    aggregate_id uuid NOT NULL,
    aggregate_type varchar(100) NOT NULL,
    event_version integer DEFAULT 1,
    correlation_id uuid,
    causation_id uuid,
    event_data jsonb NOT NULL DEFAULT '{}',
    event_metadata jsonb DEFAULT '{}',
    status platform_common.event_status DEFAULT 'pending',
    priority platform_common.event_priority DEFAULT 'normal',
    scheduled_at timestamptz DEFAULT now(),
    processing_started_at timestamptz,
    processing_completed_at timestamptz,
    processing_duration_ms integer,
    retry_count integer DEFAULT 0,
    max_retries integer DEFAULT 3,
    error_message text,
    error_details jsonb DEFAULT '{}',
    
    user_id uuid,
    source_service varchar(100),
    source_version varchar(50),
    queue_name varchar(100),
    message_id varchar(100),
    partition_key varchar(100),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_retry_count CHECK (retry_count >= 0 AND retry_count <= max_retries),
    CONSTRAINT valid_processing_duration CHECK (processing_duration_ms >= 0),
    CONSTRAINT valid_event_type_format CHECK (event_type ~* '^[a-z_]+\.[a-z_]+$')
);
CREATE INDEX idx_tenant_events_status_priority ON tenant_template.events (status, priority);
CREATE INDEX idx_tenant_events_pending_scheduled_at ON tenant_template.events (scheduled_at) WHERE status = 'pending';
CREATE INDEX idx_tenant_events_event_type ON tenant_template.events (event_type);
CREATE INDEX idx_tenant_events_created_at ON tenant_template.events (created_at);
CREATE TRIGGER trigger_events_updated_at BEFORE UPDATE ON tenant_template.events
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE tenant_template.actions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    name varchar(255) NOT NULL UNIQUE,
    action_type platform_common.action_type NOT NULL,
    handler_class varchar(500) NOT NULL,
    config jsonb DEFAULT '{}',
    event_patterns text[] NOT NULL,
    conditions jsonb DEFAULT '{}',
    is_active boolean DEFAULT true,
    priority platform_common.event_priority DEFAULT 'normal',
    timeout_seconds integer DEFAULT 300,
    retry_policy jsonb DEFAULT '{"max_retries": 3, "backoff_type": "exponential", "initial_delay_ms": 1000}',
    max_concurrent_executions integer DEFAULT 1,
    rate_limit_per_minute integer,
    is_healthy boolean DEFAULT true,
    last_health_check_at timestamptz,
    health_check_error text,
    total_executions bigint DEFAULT 0,
    successful_executions bigint DEFAULT 0,
    failed_executions bigint DEFAULT 0,
    avg_execution_time_ms integer DEFAULT 0,
    description text,
    tags varchar(50)[],
    owner_team varchar(100),
    metadata jsonb DEFAULT '{}',
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_timeout CHECK (timeout_seconds > 0),
    CONSTRAINT valid_concurrent_executions CHECK (max_concurrent_executions > 0),
    CONSTRAINT valid_rate_limit CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
    CONSTRAINT valid_statistics CHECK (
        total_executions >= 0 AND successful_executions >= 0 AND failed_executions >= 0
        AND successful_executions + failed_executions <= total_executions)
);
CREATE INDEX idx_tenant_actions_is_active ON tenant_template.actions (is_active);
CREATE INDEX idx_tenant_actions_event_patterns ON tenant_template.actions USING gin (event_patterns);
CREATE INDEX idx_tenant_actions_action_type ON tenant_template.actions (action_type);
CREATE TRIGGER trigger_actions_updated_at BEFORE UPDATE ON tenant_template.actions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE tenant_template.action_executions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    event_id uuid NOT NULL REFERENCES tenant_template.events (id) ON DELETE CASCADE,
    action_id uuid NOT NULL REFERENCES tenant_template.actions (id) ON DELETE CASCADE,
    execution_context jsonb DEFAULT '{}',
    input_data jsonb DEFAULT '{}',
    output_data jsonb DEFAULT '{}',
    status platform_common.action_status DEFAULT 'pending',
    queued_at timestamptz DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    execution_duration_ms integer,
    attempt_number integer DEFAULT 1,
    is_retry boolean DEFAULT false,
    parent_execution_id uuid REFERENCES tenant_template.action_executions (id),
    error_message text,
    error_details jsonb DEFAULT '{}',
    error_stack_trace text,
    queue_message_id varchar(100),
    worker_id varchar(100),
    memory_usage_mb integer,
    cpu_time_ms integer,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    CONSTRAINT valid_attempt_number CHECK (attempt_number > 0),
    CONSTRAINT valid_execution_duration CHECK (execution_duration_ms >= 0),
    CONSTRAINT valid_timing CHECK (
        (started_at IS NULL OR started_at >= queued_at)
        AND (completed_at IS NULL OR completed_at >= started_at))
);
CREATE INDEX idx_tenant_action_executions_event_id ON tenant_template.action_executions (event_id);
CREATE INDEX idx_tenant_action_executions_action_id ON tenant_template.action_executions (action_id);
CREATE INDEX idx_tenant_action_executions_status ON tenant_template.action_executions (status);
CREATE TRIGGER trigger_action_executions_updated_at BEFORE UPDATE ON tenant_template.action_executions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE tenant_template.event_subscriptions (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    action_id uuid NOT NULL REFERENCES tenant_template.actions (id) ON DELETE CASCADE,
    event_pattern varchar(255) NOT NULL,
    conditions jsonb DEFAULT '{}',
    is_active boolean DEFAULT true,
    priority integer DEFAULT 0,
    user_filter uuid[],
    source_service_filter varchar(100)[],
    rate_limit_per_minute integer,
    rate_limit_per_hour integer,
    rate_limit_window_start timestamptz,
    current_rate_count integer DEFAULT 0,
    name varchar(255),
    description text,
    created_by uuid,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT valid_priority CHECK (priority >= 0),
    CONSTRAINT valid_rate_limits CHECK (
        (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0)
        AND (rate_limit_per_hour IS NULL OR rate_limit_per_hour > 0)),
    CONSTRAINT unique_action_pattern UNIQUE (action_id, event_pattern, deleted_at)
);
CREATE INDEX idx_tenant_event_subscriptions_is_active ON tenant_template.event_subscriptions (is_active);
CREATE INDEX idx_tenant_event_subscriptions_event_pattern ON tenant_template.event_subscriptions (event_pattern);
CREATE TRIGGER trigger_event_subscriptions_updated_at BEFORE UPDATE ON tenant_template.event_subscriptions
    FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();

CREATE TABLE tenant_template.queue_metrics (
    id UUID PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
    queue_name varchar(100) NOT NULL,
    metrics_timestamp timestamptz DEFAULT now(),
    pending_messages integer DEFAULT 0,
    processing_messages integer DEFAULT 0,
    completed_messages integer DEFAULT 0,
    failed_messages integer DEFAULT 0,
    avg_processing_time_ms numeric(10,2),
    throughput_per_minute integer,
    error_rate_percentage numeric(5,2),
    memory_usage_mb integer,
    cpu_usage_percentage numeric(5,2),
    active_workers integer,
    is_healthy boolean DEFAULT true,
    last_message_processed_at timestamptz,
    metadata jsonb DEFAULT '{}',
    CONSTRAINT valid_percentages CHECK (
        (error_rate_percentage IS NULL OR error_rate_percentage BETWEEN 0 AND 100)
        AND (cpu_usage_percentage IS NULL OR cpu_usage_percentage BETWEEN 0 AND 100))
);
CREATE INDEX idx_tenant_queue_metrics_queue_name ON tenant_template.queue_metrics (queue_name);
CREATE INDEX idx_tenant_queue_metrics_metrics_timestamp ON tenant_template.queue_metrics (metrics_timestamp);

CREATE INDEX idx_tenant_events_correlation ON tenant_template.events(correlation_id);

COMMENT ON SCHEMA tenant_template IS 'Tenant template schema containing tenant-level event and action management';
COMMENT ON TABLE tenant_template.events IS 'Tenant-scoped event sourcing table';
COMMENT ON COLUMN tenant_template.events.event_type IS 'Dot-notation event type (e.g., users.created)';
