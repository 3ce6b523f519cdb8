module github.com/slotwatch/slotwatch/services/requests

go 1.26.8
