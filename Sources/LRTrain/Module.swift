// LRTrain
