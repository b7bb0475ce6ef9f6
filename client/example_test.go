package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/wsgate/wsgate/client"
)

// Subscribe and print a channel's messages for as long as the program runs, across gateway
// restarts and lost connections (docs/clients.md).
func Example() {
	c, err := client.Dial(context.Background(), "ws://127.0.0.1:8080/", client.Options{
		OnRecoveryFailed: func(ch string) { log.Printf("%s: messages were lost; reload its state", ch) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Subscribe("news", func(m client.Message) { fmt.Println(m.Seq, string(m.Data)) })
	<-c.Done() // until the gateway disconnects it for good (4002)
}

// Publish with an id, so that the client may send it again after a lost connection without
// publishing it twice.
func ExampleClient_Publish() {
	c, err := client.Dial(context.Background(), "ws://127.0.0.1:8080/", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, err := c.Publish(context.Background(), "orders", "order-1001", []byte(`{"total":42}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Seq, r.Duplicate)
}
