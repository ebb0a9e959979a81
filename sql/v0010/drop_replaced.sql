-- recdb 0010, after the functions: the 0009 table nothing reads any more.
DROP TABLE recdb.item_popularity_0009;
