module github.com/slotwatch/slotwatch/services/checker

go 1.26.8
