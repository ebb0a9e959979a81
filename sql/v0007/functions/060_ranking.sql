-- recdb functions, layer 6: ranking internals. rerank() (070_api.sql) builds a pool of
-- item ids and hands it to one of these; they are not meant to be called directly.

CREATE OR REPLACE FUNCTION recdb.check_k(fn text, k integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF k IS NULL OR k < 1 OR k > 10000 THEN
        RAISE EXCEPTION '%: k must be between 1 and 10000 (got %)', fn, coalesce(k::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;

-- Co-visitation votes: for every item co-consumed with the user's p_history recent
-- positive items (liked or not), the sum of its item_neighbors scores. One index range of
-- item_neighbors' (neighbor_id, item_id) key per recent item (OFFSET 0 keeps it that way:
-- a hash join would read the whole table).
CREATE OR REPLACE FUNCTION recdb.covisit_votes(p_user_id bigint, p_history integer)
RETURNS TABLE (item_id bigint, votes double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT n.item_id, sum(n.score)::float8
    FROM (SELECT DISTINCT h.item_id
          FROM recdb.recent_positive_items(p_user_id, p_history) h) r
    CROSS JOIN LATERAL (SELECT nb.item_id, nb.score FROM recdb.item_neighbors nb
                        WHERE nb.neighbor_id = r.item_id OFFSET 0) n
    GROUP BY n.item_id;
END;

-- Orders a pool of item ids for a user vector: similarity + priors, an explanation
-- (the recent item the user liked nearest to each result) and a diversity penalty that
-- demotes the 2nd, 3rd, ... result explained by the same history item.
-- Ids that are unknown or not yet embedded come last, in pool order.
--
-- Cost (the served path): every read is an index range or a hash join over the pool
-- (votes arrive counted, p_vote_ids/p_votes, NULL when covisit_weight = 0); the
-- explanation compares each pool item with at most explain_history liked items; nothing
-- scales with the catalog or the user's whole history.
CREATE OR REPLACE FUNCTION recdb.rank_pool(
    p_user_id bigint, p_embedding vector, p_pool bigint[], p_limit integer, p_fresh integer,
    p_vote_ids bigint[], p_votes double precision[]
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, @VEC@, pg_temp
BEGIN ATOMIC
    -- Named columns, not *: a function bound to every column would block later
    -- migrations from adding or dropping settings. LIMIT 1 tells the planner what the
    -- table's statistics may not: one row (else it plans joins for hundreds).
    WITH s AS MATERIALIZED (
        SELECT st.explain_history, st.covisit_history, st.popularity_weight,
               st.covisit_weight, st.freshness_weight, st.freshness_half_life,
               st.diversity_penalty FROM recdb.settings st LIMIT 1),
    pool AS MATERIALIZED (
        SELECT t.item_id, t.ord FROM unnest(p_pool) WITH ORDINALITY AS t(item_id, ord)
    ),
    -- What can explain a result: the liked ones among the user's explain_history recent
    -- positive items (recdb.recent_positive_items), if embedded.
    hist AS MATERIALIZED (
        SELECT DISTINCT ON (h.item_id) h.item_id, i.embedding, i.title
        FROM s CROSS JOIN LATERAL recdb.recent_positive_items(p_user_id, s.explain_history) h
        JOIN recdb.items i ON i.item_id = h.item_id AND i.embedding IS NOT NULL
        WHERE h.liked
    ),
    -- Co-visitation votes (rerank() counts them once, see recdb.covisit_votes) of the pool
    -- items, scaled to [0, 1] below.
    covis AS MATERIALIZED (
        SELECT v.item_id, v.votes
        FROM unnest(p_vote_ids, p_votes) AS v(item_id, votes)
        WHERE v.item_id IN (SELECT p.item_id FROM pool p)
    ),
    scored AS MATERIALIZED (
        SELECT p.item_id, p.ord, i.embedding,
               (i.embedding IS NOT NULL) AS ranked,
               (1.0 - (i.embedding <=> p_embedding))
                 + s.popularity_weight * coalesce(pop.score, 0)
                 + s.covisit_weight * coalesce(
                       c.votes / nullif((SELECT max(cm.votes) FROM covis cm), 0), 0)
                 + CASE WHEN s.freshness_weight = 0 THEN 0.0
                        ELSE s.freshness_weight * power(0.5::float8, least(60.0,
                            greatest(extract(epoch FROM now() - i.created_at), 0)::float8
                            / greatest(extract(epoch FROM s.freshness_half_life), 1)::float8))
                   END
                 AS base,
               (i.item_id IS NULL) AS unknown
        FROM pool p
        CROSS JOIN s
        LEFT JOIN recdb.items i ON i.item_id = p.item_id
        LEFT JOIN recdb.item_popularity pop ON pop.item_id = p.item_id
        LEFT JOIN covis c ON c.item_id = p.item_id
    ),
    explained AS (
        SELECT sc.*, b.item_id AS because, b.title AS because_title
        FROM scored sc
        LEFT JOIN LATERAL (
            SELECT h.item_id, h.title FROM hist h
            WHERE sc.ranked
            ORDER BY h.embedding <=> sc.embedding, h.item_id
            LIMIT 1
        ) b ON true
    ),
    diversified AS (
        SELECT x.*,
               CASE WHEN x.ranked THEN
                   x.base - (SELECT s.diversity_penalty FROM s)
                            * (row_number() OVER (PARTITION BY x.ranked, x.because
                                                  ORDER BY x.base DESC, x.item_id) - 1)
               END AS final
        FROM explained x
    )
    SELECT (row_number() OVER (ORDER BY d.ranked DESC, d.final DESC, d.ord))::integer,
           d.item_id,
           d.final::float8,
           d.because,
           CASE WHEN d.unknown THEN 'unknown item'
                WHEN NOT d.ranked THEN 'not embedded yet'
                WHEN d.because IS NOT NULL THEN 'similar to ' || d.because_title
                ELSE 'matches your interests' END,
           p_fresh
    FROM diversified d
    ORDER BY 1
    LIMIT p_limit;
END;

-- Cold-start order: decayed popularity, then newest; unknown ids last in pool order.
CREATE OR REPLACE FUNCTION recdb.rank_cold(
    p_pool bigint[], p_limit integer, p_fresh integer
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT (row_number() OVER (ORDER BY (i.item_id IS NULL), coalesce(pop.score, 0) DESC,
                                        i.created_at DESC, t.ord))::integer,
           t.item_id,
           coalesce(pop.score, 0)::float8,
           NULL::bigint,
           CASE WHEN i.item_id IS NULL THEN 'unknown item'
                WHEN pop.score > 0 THEN 'popular'
                ELSE 'new' END,
           p_fresh
    FROM unnest(p_pool) WITH ORDINALITY AS t(item_id, ord)
    LEFT JOIN recdb.items i ON i.item_id = t.item_id
    LEFT JOIN recdb.item_popularity pop ON pop.item_id = t.item_id
    ORDER BY 1
    LIMIT p_limit;
END;
