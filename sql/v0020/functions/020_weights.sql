-- recdb functions, layer 2: what one event says about interest. One definition shared by
-- the worker's mean encoder (sql/queries/worker.sql) and the zero-lag fold inside
-- rerank() (user_vector), so both compute the same vector.

-- kind weight x value term (valued kinds: (v - value_center) / value_scale, so a rating
-- below the centre pushes away) x recency decay (half_life NULL: no decay).
CREATE OR REPLACE FUNCTION recdb.event_weight(
    kind_weight real, half_life interval, value_center real, value_scale real,
    value real, age interval
) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN kind_weight::float8
    * CASE WHEN value_center IS NULL THEN 1.0
           ELSE (coalesce(value, value_center) - value_center)::float8 / value_scale END
    -- Past 40 half-lives (< 1e-12) an event weighs nothing: keeps power() and the
    -- float4 products in scale() clear of underflow errors for very old events.
    -- date_part, not extract: extract() returns numeric, and numeric arithmetic on every
    -- event was a third of the worker's user batch.
    * CASE WHEN half_life IS NULL THEN 1.0
           WHEN date_part('epoch', age) > 40 * greatest(date_part('epoch', half_life), 1) THEN 0.0
           ELSE power(0.5::float8, greatest(date_part('epoch', age), 0)
                                   / greatest(date_part('epoch', half_life), 1)) END;

-- Scalar times vector (pgvector has only element-wise products).
-- These two RETURN-bodied functions bind every reference when created, so a caller's
-- search_path cannot change them; leaving out a SET clause lets the planner inline them.
CREATE OR REPLACE FUNCTION recdb.scale(v vector, s double precision) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN v * array_fill(s::real, ARRAY[vector_dims(v)])::vector;
