-- The five tables of one platform scope (DESIGN §1). __SCHEMA__ is `admin` or
-- `tenant_template` (constants in Go, never input). Each table is created,
-- with its indexes and updated_at trigger, only when it is missing, so a
-- schema that the platform's migrations built is left exactly as it was.
CREATE SCHEMA IF NOT EXISTS __SCHEMA__;

DO $neo$
BEGIN
    IF to_regclass('__SCHEMA__.events') IS NULL THEN
        CREATE TABLE __SCHEMA__.events (
            id uuid PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
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
            __EVENTS_SCOPE_COLUMNS__
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
            CONSTRAINT valid_event_type_format CHECK (event_type ~ '^[a-z_]+\.[a-z_]+$')
        );
        CREATE INDEX events_status_priority_idx ON __SCHEMA__.events (status, priority);
        CREATE INDEX events_pending_scheduled_at_idx ON __SCHEMA__.events (scheduled_at) WHERE status = 'pending';
        CREATE INDEX events_event_type_idx ON __SCHEMA__.events (event_type);
        CREATE INDEX events_created_at_idx ON __SCHEMA__.events (created_at);
        CREATE TRIGGER events_updated_at BEFORE UPDATE ON __SCHEMA__.events
            FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();
    END IF;

    IF to_regclass('__SCHEMA__.actions') IS NULL THEN
        CREATE TABLE __SCHEMA__.actions (
            id uuid PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
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
        CREATE INDEX actions_is_active_idx ON __SCHEMA__.actions (is_active);
        CREATE INDEX actions_event_patterns_idx ON __SCHEMA__.actions USING gin (event_patterns);
        CREATE INDEX actions_action_type_idx ON __SCHEMA__.actions (action_type);
        CREATE TRIGGER actions_updated_at BEFORE UPDATE ON __SCHEMA__.actions
            FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();
    END IF;

    IF to_regclass('__SCHEMA__.action_executions') IS NULL THEN
        CREATE TABLE __SCHEMA__.action_executions (
            id uuid PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
            event_id uuid NOT NULL REFERENCES __SCHEMA__.events (id) ON DELETE CASCADE,
            action_id uuid NOT NULL REFERENCES __SCHEMA__.actions (id) ON DELETE CASCADE,
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
            parent_execution_id uuid REFERENCES __SCHEMA__.action_executions (id),
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
        CREATE INDEX action_executions_event_id_idx ON __SCHEMA__.action_executions (event_id);
        CREATE INDEX action_executions_action_id_idx ON __SCHEMA__.action_executions (action_id);
        CREATE INDEX action_executions_status_idx ON __SCHEMA__.action_executions (status);
        CREATE TRIGGER action_executions_updated_at BEFORE UPDATE ON __SCHEMA__.action_executions
            FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();
    END IF;

    IF to_regclass('__SCHEMA__.event_subscriptions') IS NULL THEN
        CREATE TABLE __SCHEMA__.event_subscriptions (
            id uuid PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
            action_id uuid NOT NULL REFERENCES __SCHEMA__.actions (id) ON DELETE CASCADE,
            event_pattern varchar(255) NOT NULL,
            conditions jsonb DEFAULT '{}',
            is_active boolean DEFAULT true,
            priority integer DEFAULT 0,
            __SUBSCRIPTION_FILTERS__
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
        CREATE INDEX event_subscriptions_is_active_idx ON __SCHEMA__.event_subscriptions (is_active);
        CREATE INDEX event_subscriptions_event_pattern_idx ON __SCHEMA__.event_subscriptions (event_pattern);
        CREATE TRIGGER event_subscriptions_updated_at BEFORE UPDATE ON __SCHEMA__.event_subscriptions
            FOR EACH ROW EXECUTE FUNCTION platform_common.update_updated_at_column();
    END IF;

    IF to_regclass('__SCHEMA__.queue_metrics') IS NULL THEN
        CREATE TABLE __SCHEMA__.queue_metrics (
            id uuid PRIMARY KEY DEFAULT platform_common.uuid_generate_v7(),
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
        CREATE INDEX queue_metrics_queue_name_idx ON __SCHEMA__.queue_metrics (queue_name);
        CREATE INDEX queue_metrics_metrics_timestamp_idx ON __SCHEMA__.queue_metrics (metrics_timestamp);
    END IF;
END
$neo$;
