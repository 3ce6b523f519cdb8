module github.com/slotwatch/slotwatch/services/notifier

go 1.26.8
