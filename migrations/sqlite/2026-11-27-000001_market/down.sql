DROP TABLE trades; DROP TABLE bids; DROP TABLE auction_bidders; DROP TABLE auctions; DROP TABLE listings; DROP TABLE region_flags; DROP TABLE benchmark_prices;
