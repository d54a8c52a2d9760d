module shopstream/gateway

go 1.22
