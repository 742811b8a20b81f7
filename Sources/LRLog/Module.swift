// LRLog
