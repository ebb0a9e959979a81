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
-- positive items (liked or not), except the items in p_except (rerank(): what the user
-- consumed, never a result), the sum of its cosines with them. item_neighbors stores
-- users(i, j) / sqrt(users(j)) (so that a popular item's count change rewrites no list
-- holding it, see covisit_relist): the member's 1 / sqrt(users(i)) is applied here, one
-- covisit_counts key lookup per recent item. A recent item votes for at most
-- settings.covisit_fanout of the items whose lists hold it, the ones it is most similar
-- to (the stored score orders them as the cosine does, ties by lower id): one index-only
-- range of item_neighbors_votes per recent item, stopping at that bound, so a popular
-- item held by thousands of lists costs no more than a niche one (revision 0018). The
-- bound is read once per call (a join, not a sub-select the LIMIT would run again for
-- each recent item: 10% slower); the LIMIT keeps the planner from a hash join over the
-- whole table.
CREATE OR REPLACE FUNCTION recdb.covisit_votes(
    p_user_id bigint, p_history integer, p_except bigint[] DEFAULT NULL
)
RETURNS TABLE (item_id bigint, votes double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan  -- planned once per session, not per call
BEGIN ATOMIC
    SELECT n.item_id, sum(n.score / sqrt(c.users::float8))::float8
    FROM recdb.settings s
    CROSS JOIN (SELECT DISTINCT h.item_id
                FROM recdb.recent_positive_items(p_user_id, p_history) h) r
    JOIN recdb.covisit_counts c ON c.item_id = r.item_id
    CROSS JOIN LATERAL (SELECT nb.item_id, nb.score FROM recdb.item_neighbors nb
                        WHERE nb.neighbor_id = r.item_id
                        ORDER BY nb.score DESC, nb.item_id
                        LIMIT s.covisit_fanout) n
    WHERE n.item_id NOT IN (SELECT unnest(p_except))
    GROUP BY n.item_id;
END;

-- Orders a pool of item ids for a user vector: similarity + priors, an explanation
-- (the recent item the user liked nearest to each result) and a diversity penalty that
-- demotes the 2nd, 3rd, ... result explained by the same history item.
-- Ids that are unknown or not yet embedded come last, in pool order.
--
-- Cost (the served path): every read is an index range or a hash join over the pool
-- (votes arrive counted, p_vote_ids/p_votes, NULL when covisit_weight = 0); the
-- explanation compares each of the best 2 x p_limit + 10 pool items with at most
-- explain_history liked items; nothing scales with the catalog or the user's whole
-- history.
CREATE OR REPLACE FUNCTION recdb.rank_pool(
    p_user_id bigint, p_embedding vector, p_pool bigint[], p_limit integer, p_fresh integer,
    p_vote_ids bigint[], p_votes double precision[]
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, @VEC@, pg_temp
BEGIN ATOMIC
    -- Named columns, not *: a function bound to every column would block later
    -- migrations from adding or dropping settings. LIMIT 1 tells the planner what the
    -- table's statistics may not: one row (else it plans joins for hundreds). With it, the
    -- popularity normaliser (recdb.popularity_state, one row): an item's score is its mass
    -- x scale, 0 below zero_below (see recdb.refresh_popularity).
    WITH s AS MATERIALIZED (
        SELECT st.explain_history, st.covisit_history, st.popularity_weight,
               st.covisit_weight, st.freshness_weight, st.freshness_half_life,
               st.diversity_penalty, st.content_prior_weight,
               least(floor(p_limit * st.explore_share),
                     greatest(p_limit - st.explore_after, 0)) AS explore,
               ps.scale AS pop_scale, ps.zero_below AS pop_zero_below
        FROM recdb.settings st LEFT JOIN recdb.popularity_state ps ON true LIMIT 1),
    -- The content prior (recdb.content_prior), when it was fitted in the space now served
    -- and has a weight: what an item nobody has interacted with yet is predicted to be
    -- worth from its vector alone.
    cp AS MATERIALIZED (
        SELECT c.weights, c.bias FROM recdb.content_prior c, s
        WHERE s.content_prior_weight <> 0
          AND c.model_id IS NOT DISTINCT FROM (SELECT sv.model_id FROM recdb.serving sv)
    ),
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
                 + s.popularity_weight * CASE WHEN pop.mass >= s.pop_zero_below
                                              THEN pop.mass * s.pop_scale ELSE 0.0 END
                 + CASE WHEN pop.item_id IS NOT NULL OR cp.bias IS NULL THEN 0.0
                        ELSE s.content_prior_weight * least(1.0, greatest(0.0,
                                 cp.bias - (i.embedding <#> cp.weights)))
                   END
                 + s.covisit_weight * coalesce(
                       c.votes / nullif((SELECT max(cm.votes) FROM covis cm), 0), 0)
                 + CASE WHEN s.freshness_weight = 0 THEN 0.0
                        ELSE s.freshness_weight * power(0.5::float8, least(60.0,
                            greatest(extract(epoch FROM now() - i.created_at), 0)::float8
                            / greatest(extract(epoch FROM s.freshness_half_life), 1)::float8))
                   END
                 AS base,
               (i.item_id IS NULL) AS unknown,
               (i.embedding IS NOT NULL AND pop.item_id IS NULL) AS brand_new
        FROM pool p
        CROSS JOIN s
        LEFT JOIN recdb.items i ON i.item_id = p.item_id
        LEFT JOIN recdb.popularity pop ON pop.item_id = p.item_id
        LEFT JOIN covis c ON c.item_id = p.item_id
        LEFT JOIN cp ON true
    ),
    -- Only candidates that can still reach the top p_limit are explained and diversified
    -- (each explanation compares an item with every liked history item): the best
    -- 2 x p_limit + 10 by base score, and every brand-new one (exploration keeps some
    -- whatever their rank). The penalty only lowers scores, so each contender's score is
    -- what it was with the whole pool (a brand-new one lower down counts the contenders
    -- above it in its group only); an item further down would need more of the
    -- better-based items penalised below it than there are slots.
    contenders AS (
        SELECT sc.* FROM (
            SELECT x.*, row_number() OVER (ORDER BY x.ranked DESC, x.base DESC, x.item_id) AS pre
            FROM scored x) sc
        WHERE sc.pre <= 2 * p_limit + 10 OR sc.brand_new
    ),
    explained AS (
        SELECT sc.*, b.item_id AS because, b.title AS because_title
        FROM contenders sc
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
    ),
    -- Exploration: the explore_share x p_limit (rounded down, at most p_limit minus
    -- explore_after) best-scored brand-new items (nobody has interacted with them yet)
    -- are kept in the results whatever their rank; the other slots go to the best of the
    -- rest. Everything is listed by score.
    reserved AS (
        SELECT d.*,
               d.brand_new AND row_number() OVER (PARTITION BY d.brand_new
                                                 ORDER BY d.final DESC, d.item_id)
                               <= (SELECT s.explore FROM s) AS kept
        FROM diversified d
    ),
    picked AS (
        SELECT r.*,
               row_number() OVER (PARTITION BY r.kept
                                  ORDER BY r.ranked DESC, r.final DESC, r.ord) AS place,
               count(*) FILTER (WHERE r.kept) OVER () AS n_kept
        FROM reserved r
    )
    SELECT (row_number() OVER (ORDER BY d.ranked DESC, d.final DESC, d.ord))::integer,
           d.item_id,
           d.final::float8,
           d.because,
           CASE WHEN d.unknown THEN 'unknown item'
                WHEN NOT d.ranked THEN 'not embedded yet'
                WHEN d.because IS NOT NULL THEN 'similar to ' || d.because_title
                WHEN d.brand_new THEN 'new'
                ELSE 'matches your interests' END,
           p_fresh
    FROM picked d
    WHERE d.kept OR d.place <= p_limit - d.n_kept
    ORDER BY 1
    LIMIT p_limit;
END;

-- Cold-start order: decayed popularity (for an item nobody has interacted with yet, the
-- popularity the content prior predicts from its vector), then newest; unknown ids last
-- in pool order.
CREATE OR REPLACE FUNCTION recdb.rank_cold(
    p_pool bigint[], p_limit integer, p_fresh integer
) RETURNS TABLE (rank integer, item_id bigint, score double precision,
                 because_item_id bigint, reason text, fresh_events integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, @VEC@, pg_temp
BEGIN ATOMIC
    WITH cp AS MATERIALIZED (
        SELECT c.weights, c.bias FROM recdb.content_prior c, recdb.settings s
        WHERE s.content_prior_weight <> 0
          AND c.model_id IS NOT DISTINCT FROM (SELECT sv.model_id FROM recdb.serving sv)
    ),
    -- The popularity normaliser (recdb.popularity_state): score = mass x scale.
    ps AS MATERIALIZED (
        SELECT st.scale, st.zero_below FROM recdb.popularity_state st
    ),
    own AS (
        SELECT t.item_id, t.ord,
               CASE WHEN pop.item_id IS NULL THEN NULL
                    WHEN pop.mass >= ps.zero_below THEN pop.mass * ps.scale
                    ELSE 0.0 END AS score
        FROM unnest(p_pool) WITH ORDINALITY AS t(item_id, ord)
        LEFT JOIN recdb.popularity pop ON pop.item_id = t.item_id
        LEFT JOIN ps ON true
    ),
    scored AS (
        SELECT t.item_id, t.ord, i.item_id IS NULL AS unknown, i.created_at, t.score AS own,
               coalesce(t.score,
                        CASE WHEN i.embedding IS NULL OR cp.bias IS NULL THEN 0.0
                             ELSE least(1.0, greatest(0.0, cp.bias - (i.embedding <#> cp.weights)))
                        END, 0.0)::float8 AS score
        FROM own t
        LEFT JOIN recdb.items i ON i.item_id = t.item_id
        LEFT JOIN cp ON true
    )
    SELECT (row_number() OVER (ORDER BY x.unknown, x.score DESC, x.created_at DESC,
                                        x.ord))::integer,
           x.item_id,
           x.score,
           NULL::bigint,
           CASE WHEN x.unknown THEN 'unknown item'
                WHEN x.own > 0 THEN 'popular'
                ELSE 'new' END,
           p_fresh
    FROM scored x
    ORDER BY 1
    LIMIT p_limit;
END;
