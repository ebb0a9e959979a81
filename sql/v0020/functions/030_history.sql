-- recdb functions, layer 3: which of a user's events say "more of this".
--
-- A positive event is an event of a kind with weight > 0 (view, click, cart, purchase,
-- like, rate by default): the user chose the item. Kinds with weight <= 0 (dislike, skip)
-- never count. A positive event is liked unless it is a valued kind's value at or below
-- value_center (a 1- or 2-star rating): the film was watched, and not enjoyed.
--
-- The user's recent positive items are the items of their p_limit newest positive events,
-- newest first (an item may repeat), each with whether that event was liked:
--   - co-visitation counts them all, liked or not ("items consumed together"):
--     refresh_neighbors() (covisit_history per user), the votes in rank_pool() and the
--     co-visited candidates of rerank() (covisit_history);
--   - the explanation (rank_pool(), explain_history) uses the liked ones only: a result
--     is never "similar to" an item the user rated low.
-- How much an event moves the user vector, and in which direction, is event_weight()'s.
--
-- SQL-standard body, STABLE, no SET clause: the planner inlines it into its callers (an
-- index-only scan of the events key (user_id, event_id), which carries item, kind and
-- value since revision 0014, backwards, stopping after p_limit rows), so it
-- costs nothing over writing the query out. Callers pass p_limit as a column or variable,
-- not a sub-select, or it is not inlined.
CREATE OR REPLACE FUNCTION recdb.recent_positive_items(p_user_id bigint, p_limit integer)
RETURNS TABLE (item_id bigint, liked boolean)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT e.item_id, (k.value_center IS NULL OR e.value > k.value_center)
    FROM recdb.events e JOIN recdb.event_kinds k ON k.kind = e.kind
    WHERE e.user_id = p_user_id AND k.weight > 0
    ORDER BY e.event_id DESC
    LIMIT p_limit;
END;
