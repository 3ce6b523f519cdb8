module github.com/slotwatch/slotwatch/services/accountpool

go 1.26.8
